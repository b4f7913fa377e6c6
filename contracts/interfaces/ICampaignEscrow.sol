// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Reward campaigns in escrow, settled in lean batches of attested engagements
/// @notice A marketer escrows a budget of an ERC-20 and sets a reward per action. Attesters (a brand's app
/// backend, ad server or email service) report engagements in batches; each engagement is paid into the
/// consumer's accrued balance when consent, dates, caps and budget allow, and otherwise skipped with a reason.
/// Consumers claim their accruals directly or gaslessly by signature.
/// @dev Warning: attesters are trusted to report engagements that really happened; the contract enforces consent,
/// campaign dates, per-consumer caps, budget and one payment per event id, not the truth of the evidence.
/// @dev Warning: tokens must be plain ERC-20s. A token that delivers less than the amount pulled (fee on transfer)
/// is refused; rebasing tokens break the accounting and must not be used.
/// @dev Warning: every accrued, unclaimed reward stays escrowed and claimable after a campaign closes; a close
/// refunds only the unspent budget. Engagements not yet settled when the marketer closes are lost to consumers,
/// so attesters should settle before `endsAt` plus their reporting delay.
///
/// Settlement batch encoding (packed, not ABI): a sequence of consumer groups,
///   group      := consumer (20 bytes) | count (1 byte, 1..255) | count * engagement
///   engagement := action (1 byte) | eventId (6 bytes, uint48) | time (5 bytes, uint40 unix seconds)
///                 | evidenceHash (32 bytes)
/// Event ids are dense per-campaign integers assigned at intake; a consumer's engagements must share one group
/// per batch for the one-read-one-write accounting to hold (a repeated group is correct, only costlier).
///
/// `Rewarded.record` packs, from the least significant bit:
///   amount (uint104) | time (uint40) << 104 | eventId (uint48) << 144 | action (uint8) << 192
///   | campaignId (uint48) << 200
/// (time, eventId and action keep their batch order, so the record takes them from calldata in one shift).
interface ICampaignEscrow {
    /* TYPES */

    enum Action {
        INSTALL,
        LOCATION_OPT_IN,
        DAILY_OPEN,
        AD_VIEW,
        AD_CLICK,
        EMAIL_OPEN,
        EMAIL_CLICK,
        SUBSCRIBE
    }

    enum Status {
        None,
        Active,
        Paused,
        Closed
    }

    /// @notice Why an engagement in a batch was skipped rather than paid.
    enum RejectReason {
        None,
        DuplicateEvent, // its event id was already settled (paid or rejected) for this campaign
        ActionNotOffered, // the campaign does not reward this action
        TimeInFuture, // the engagement's time is after the settling block
        OutsideCampaignDates, // before startsAt or after endsAt
        NoConsent, // consent for the action's purposes not active now or not granted by the engagement's time
        LifetimeCapReached, // the consumer already reached the per-action lifetime cap
        DailyCapReached, // the consumer already reached the per-action cap for that UTC day
        StaleDay, // a capped action from a UTC day before the consumer's latest counted day
        BudgetExhausted // the remaining budget is below the reward
    }

    /// @notice A campaign's rules, fixed at creation. Arrays are indexed by `Action`.
    struct CampaignTerms {
        address token; // the ERC-20 rewards are paid in
        address brand; // whose consent an engagement needs (ConsentRegistry brand)
        uint40 startsAt; // first second an engagement may have happened
        uint40 endsAt; // last second an engagement may have happened
        uint96[8] rewards; // token base units per paid engagement; zero is allowed (recorded, not paid)
        uint8[8] purposes; // consent purposes each action requires; zero means the action is not offered
        uint8[8] lifetimeCaps; // max paid engagements per consumer per action; zero means no cap
        uint8[8] dailyCaps; // max paid engagements per consumer per action per UTC day; zero means no cap
    }

    /* ERRORS */

    error EscrowUnknownCampaign(uint256 campaignId);
    error EscrowNotMarketer(uint256 campaignId, address caller);
    error EscrowNotAttester(uint256 campaignId, address caller);
    error EscrowCampaignPaused(uint256 campaignId);
    error EscrowCampaignClosed(uint256 campaignId);
    error EscrowCampaignNotPaused(uint256 campaignId);
    /// @notice A campaign can be closed only after its last engagement second.
    error EscrowCampaignNotEnded(uint256 campaignId, uint256 endsAt, uint256 now_);
    error EscrowInvalidToken(address token);
    error EscrowInvalidBrand(address brand);
    error EscrowInvalidDates(uint256 startsAt, uint256 endsAt);
    /// @notice An offered action must require consent purposes among the six defined ones.
    error EscrowInvalidPurposes(uint256 action, uint256 purposes);
    error EscrowInvalidAttester(address attester);
    error EscrowAttesterAlreadyAdded(uint256 campaignId, address attester);
    error EscrowAttesterNotFound(uint256 campaignId, address attester);
    error EscrowZeroAmount();
    /// @notice The token delivered less than the amount pulled (a fee-on-transfer token).
    error EscrowTransferShortfall(address token, uint256 expected, uint256 received);
    /// @notice Budgets are kept below 2^104 base units so that no accrual can overflow its packed field.
    error EscrowBudgetTooLarge(uint256 campaignId, uint256 total, uint256 max);
    /// @notice The packed batch is truncated or a group is empty; `offset` is the byte where decoding failed.
    error EscrowMalformedBatch(uint256 offset);
    error EscrowInvalidAction(uint256 offset, uint256 action);
    error EscrowExpiredSignature(uint256 deadline);
    error EscrowInvalidSigner(address expected);
    error EscrowInvalidRecipient(address to);
    error EscrowNothingToClaim(address consumer);

    /* EVENTS */

    event CampaignCreated(
        uint256 indexed campaignId, address indexed marketer, address indexed token, CampaignTerms terms, uint256 budget
    );
    event CampaignFunded(uint256 indexed campaignId, address indexed funder, uint256 amount, uint256 budget);
    event CampaignPaused(uint256 indexed campaignId);
    event CampaignUnpaused(uint256 indexed campaignId);
    /// @notice `refund` went back to the marketer; `owed` stays escrowed for consumers' claims.
    event CampaignClosed(uint256 indexed campaignId, uint256 refund, uint256 owed);
    event AttesterAdded(uint256 indexed campaignId, address indexed attester);
    event AttesterRemoved(uint256 indexed campaignId, address indexed attester);
    /// @notice One paid engagement; `record` packs campaign, event id, action, time and amount (see above).
    event Rewarded(address indexed consumer, uint256 record, bytes32 evidenceHash);
    /// @notice One skipped engagement and the rule it failed.
    event Rejected(uint256 indexed campaignId, address indexed consumer, uint256 eventId, RejectReason reason);
    /// @notice One per settled batch: totals, and the budget left after it.
    event BatchSettled(
        uint256 indexed campaignId,
        address indexed attester,
        uint256 paid,
        uint256 rejected,
        uint256 amount,
        uint256 budget
    );
    event Claimed(uint256 indexed campaignId, address indexed consumer, address to, uint256 amount);

    /* CAMPAIGNS */

    /// @notice Creates a campaign and pulls `budget` of `terms.token` from the caller (approve first).
    function createCampaign(CampaignTerms calldata terms, address[] calldata attesters, uint256 budget)
        external
        returns (uint256 campaignId);

    /// @notice `createCampaign` with an EIP-2612 permit for the budget, in one transaction.
    function createCampaignWithPermit(
        CampaignTerms calldata terms,
        address[] calldata attesters,
        uint256 budget,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 campaignId);

    /// @notice Adds `amount` to the campaign's budget, pulled from the marketer.
    function topUp(uint256 campaignId, uint256 amount) external;

    function pause(uint256 campaignId) external;

    function unpause(uint256 campaignId) external;

    function addAttester(uint256 campaignId, address attester) external;

    function removeAttester(uint256 campaignId, address attester) external;

    /// @notice After `endsAt`: closes the campaign and returns the unspent budget to the marketer.
    function close(uint256 campaignId) external returns (uint256 refund);

    /* SETTLEMENT */

    /// @notice Settles a packed batch (encoding above) reported by the calling attester.
    function settle(uint256 campaignId, bytes calldata batch) external;

    /// @notice `settle` relayed for `attester`, authorised by their EIP-712 `Settlement` signature.
    function settleBySig(
        uint256 campaignId,
        bytes calldata batch,
        address attester,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /* CLAIMS */

    /// @notice Pays the caller's accrued rewards in `campaignIds` to `to`.
    function claim(uint256[] calldata campaignIds, address to) external returns (uint256 total);

    /// @notice `claim` relayed for `consumer`, authorised by their EIP-712 `Claim` signature (gasless).
    function claimBySig(
        address consumer,
        uint256[] calldata campaignIds,
        address to,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint256 total);

    /* VIEWS */

    function terms(uint256 campaignId) external view returns (CampaignTerms memory);

    /// @notice Live state: marketer, status, unspent budget and accrued-unclaimed total.
    function campaignState(uint256 campaignId)
        external
        view
        returns (address marketer, Status status, uint256 budget, uint256 owed);

    /// @notice A consumer's accrued (unclaimed) amount, last capped UTC day and per-action counters.
    function accountOf(uint256 campaignId, address consumer)
        external
        view
        returns (uint256 accrued, uint256 day, uint8[8] memory lifetimeCounts, uint8[8] memory dailyCounts);

    function isAttester(uint256 campaignId, address attester) external view returns (bool);

    /// @notice True once an event id has been settled (paid or rejected) for the campaign.
    function isSettled(uint256 campaignId, uint256 eventId) external view returns (bool);

    function campaignCount() external view returns (uint256);
}
