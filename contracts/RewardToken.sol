// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title RewardToken
/// @notice The devnet's reward currency: a plain ERC-20 with EIP-2612 permit, so a marketer funds a campaign
/// with one signature. Any ERC-20 works with CampaignEscrow; this one exists so a devnet has one.
contract RewardToken is ERC20, ERC20Permit {
    /// @param initialHolder receives the whole fixed supply (the deployer on devnets)
    constructor(string memory name_, string memory symbol_, address initialHolder, uint256 initialSupply)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        _mint(initialHolder, initialSupply);
    }
}
