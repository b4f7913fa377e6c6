// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken: a test-only ERC-20 that burns a fee from every transfer between two accounts
/// @notice The recipient gets `value - value * feeBps / 10_000`; CampaignEscrow must refuse such a token when it
/// funds a budget (EscrowTransferShortfall), since the budget has to equal what the escrow holds.
/// @dev Never deploy outside tests. Anyone may set the fee, so a test can fund at 0 and top up at a fee.
contract FeeOnTransferToken is ERC20 {
    uint256 public feeBps;

    constructor(address holder, uint256 supply, uint256 feeBps_) ERC20("Fee Token", "FEE") {
        feeBps = feeBps_;
        _mint(holder, supply);
    }

    function setFee(uint256 feeBps_) external {
        feeBps = feeBps_;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = (value * feeBps) / 10_000;
        super._update(from, to, value - fee);
        if (fee != 0) super._update(from, address(0), fee);
    }
}
