// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";

/// @title NaiveEscrow: the benchmark's baseline, never deployed for real
/// @notice Settlement written the obvious way, to measure what CampaignEscrow's lean design saves: ABI arrays of
/// structs, a mapping of 32-byte event ids for dedup, an external consent call, a balance write and a budget
/// write per engagement, and a fully ABI-encoded event. It enforces fewer rules than CampaignEscrow (no caps,
/// no dates), which only flatters the baseline.
contract NaiveEscrow {
    struct Engagement {
        address consumer;
        uint8 action;
        bytes32 eventId;
        uint64 time;
        bytes32 evidenceHash;
    }

    struct Campaign {
        IERC20 token;
        address brand;
        address attester;
        uint256 budget;
        uint256[8] rewards;
        uint8[8] purposes;
    }

    event Rewarded(
        uint256 indexed campaignId,
        address indexed consumer,
        bytes32 indexed eventId,
        uint8 action,
        uint256 amount,
        uint64 time,
        bytes32 evidenceHash
    );
    event Skipped(uint256 indexed campaignId, bytes32 indexed eventId);

    error NaiveNotAttester(address caller);

    IConsentRegistry public immutable registry;
    uint256 public campaignCount;
    mapping(uint256 => Campaign) public campaigns;
    mapping(bytes32 => bool) public settled;
    mapping(uint256 => mapping(address => uint256)) public balances;

    constructor(IConsentRegistry registry_) {
        registry = registry_;
    }

    function createCampaign(
        IERC20 token,
        address brand,
        address attester,
        uint256 budget,
        uint256[8] calldata rewards,
        uint8[8] calldata purposes
    ) external returns (uint256 id) {
        id = ++campaignCount;
        campaigns[id] = Campaign(token, brand, attester, budget, rewards, purposes);
        token.transferFrom(msg.sender, address(this), budget);
    }

    function settle(uint256 campaignId, Engagement[] calldata engagements) external {
        Campaign storage c = campaigns[campaignId];
        if (msg.sender != c.attester) revert NaiveNotAttester(msg.sender);
        for (uint256 i = 0; i < engagements.length; ++i) {
            Engagement calldata e = engagements[i];
            bytes32 key = keccak256(abi.encode(campaignId, e.eventId));
            uint256 amount = c.rewards[e.action];
            if (
                settled[key] || amount > c.budget
                    || !registry.hasConsent(e.consumer, c.brand, c.purposes[e.action], e.time)
            ) {
                emit Skipped(campaignId, e.eventId);
                continue;
            }
            settled[key] = true;
            balances[campaignId][e.consumer] += amount;
            c.budget -= amount;
            emit Rewarded(campaignId, e.consumer, e.eventId, e.action, amount, e.time, e.evidenceHash);
        }
    }
}
