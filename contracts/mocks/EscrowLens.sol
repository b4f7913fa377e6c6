// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {ICampaignEscrow} from "../interfaces/ICampaignEscrow.sol";

/// @title EscrowLens: test-only, reads an escrow's books in one call
/// @notice The invariant tests check, after every step, the escrow's token balance and every campaign's status,
/// budget, owed total and per-consumer accounts; one eth_call through this lens replaces a dozen, and reads
/// nothing but the escrow's own public views.
/// @dev Never deploy outside tests.
contract EscrowLens {
    struct Account {
        uint256 accrued;
        uint256 day;
        uint8[8] lifetimeCounts;
        uint8[8] dailyCounts;
    }

    struct CampaignBooks {
        uint256 status;
        uint256 budget;
        uint256 owed;
        Account[] accounts; // per consumer, in the order given
    }

    function books(ICampaignEscrow escrow, IERC20 token, uint256[] calldata campaignIds, address[] calldata consumers)
        external
        view
        returns (uint256 balance, CampaignBooks[] memory campaigns)
    {
        balance = token.balanceOf(address(escrow));
        campaigns = new CampaignBooks[](campaignIds.length);
        for (uint256 i = 0; i < campaignIds.length; ++i) {
            CampaignBooks memory books_ = campaigns[i];
            ICampaignEscrow.Status status;
            (, status, books_.budget, books_.owed) = escrow.campaignState(campaignIds[i]);
            books_.status = uint256(status);
            books_.accounts = new Account[](consumers.length);
            for (uint256 j = 0; j < consumers.length; ++j) {
                Account memory a = books_.accounts[j];
                (a.accrued, a.day, a.lifetimeCounts, a.dailyCounts) = escrow.accountOf(campaignIds[i], consumers[j]);
            }
        }
    }
}
