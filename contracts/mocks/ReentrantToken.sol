// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken: a test-only ERC-20 that calls back into a contract while its tokens move
/// @notice Armed with a target, a watched address and calldata, the next transfer from or to the watched address
/// (the escrow paying out, or pulling a budget in) makes the token call the target once, in the middle of the
/// transfer. The outcome is recorded rather than bubbled up, so the outer call completes and a test can read
/// whether the reentry reverted and with which error (CampaignEscrow's guard: ReentrancyGuardReentrantCall).
/// @dev Never deploy outside tests.
contract ReentrantToken is ERC20 {
    address public target;
    address public watched;
    bytes public reentryCall;
    bool public armed;
    bool public attempted;
    bool public reentrySucceeded;
    bytes public reentryResult;

    constructor(address holder, uint256 supply) ERC20("Reentrant Token", "REENTER") {
        _mint(holder, supply);
    }

    /// @notice The next transfer from or to `watched_` calls `target_` with `data` once.
    function arm(address target_, address watched_, bytes calldata data) external {
        target = target_;
        watched = watched_;
        reentryCall = data;
        armed = true;
        attempted = false;
        reentrySucceeded = false;
        delete reentryResult;
    }

    /// @notice Lets the token act as an account of its own (be an attester, grant consent), outside any transfer.
    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && (from == watched || to == watched)) {
            armed = false; // once: the reentered call may move tokens too
            attempted = true;
            (reentrySucceeded, reentryResult) = target.call(reentryCall);
        }
    }
}
