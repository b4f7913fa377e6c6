// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ICampaignEscrow} from "./interfaces/ICampaignEscrow.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {ConsentRecord} from "./libraries/ConsentRecord.sol";

/// @title CampaignEscrow
/// @notice Reward budgets in escrow, lean batch settlement of attested engagements, and gasless claims.
/// @dev Settlement is designed around the EVM's prices (DESIGN.md, "Settlement: where the gas goes"): one packed
/// storage word per (campaign, consumer) read and written once per consumer group, consent read once per group,
/// a bitmap of settled event ids, budget kept in memory and written once per batch, and one small log per
/// paid engagement.
contract CampaignEscrow is ICampaignEscrow, EIP712, Nonces, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLEMENT_TYPEHASH =
        keccak256("Settlement(address attester,uint256 campaignId,bytes batch,uint256 nonce,uint256 deadline)");
    bytes32 public constant CLAIM_TYPEHASH =
        keccak256("Claim(address consumer,uint256[] campaignIds,address to,uint256 nonce,uint256 deadline)");

    /// @notice Budget plus owed stays below 2^104, so an accrual (at most the owed total) fits its 104-bit field.
    uint256 public constant MAX_BUDGET = (1 << 104) - 1;

    uint256 private constant ACTION_COUNT = 8;
    uint256 private constant GROUP_HEADER_BYTES = 21; // consumer (20) + count (1)
    uint256 private constant ENGAGEMENT_BYTES = 44; // action (1) + eventId (6) + time (5) + evidence (32)

    // Account word of a (campaign, consumer): accrued | lastDay << 104 | lifetime counts << 128 | daily << 192
    uint256 private constant ACCRUED_MASK = (1 << 104) - 1;
    uint256 private constant DAY_SHIFT = 104;
    uint256 private constant DAY_MASK = 0xffffff; // uint24 UTC day number: uint40 seconds / 86400 < 2^24
    uint256 private constant LIFETIME_SHIFT = 128;
    uint256 private constant DAILY_SHIFT = 192;
    uint256 private constant COUNTS_MASK = 0xffffffffffffffff; // 8 x uint8
    // Rewarded.record: amount | time << 104 | eventId << 144 | action << 192 | campaignId << 200 (ICampaignEscrow)
    uint256 private constant RECORD_TIME_SHIFT = 104;
    uint256 private constant RECORD_CAMPAIGN_SHIFT = 200;

    // A settlement frame: one memory block of FRAME_WORDS words that the engagement loop reads by fixed index.
    // Words 0..7 are the per-action policies: reward (bits 0..95) | required purposes << POLICY_PURPOSES
    // | grant-time shift << POLICY_GRANT | lifetime cap << POLICY_LIFETIME_CAP | daily cap << POLICY_DAILY_CAP.
    uint256 private constant POLICY_REWARD_MASK = 0xffffffffffffffffffffffff; // uint96
    uint256 private constant POLICY_PURPOSES = 96;
    uint256 private constant POLICY_GRANT = 104;
    uint256 private constant POLICY_LIFETIME_CAP = 112;
    uint256 private constant POLICY_DAILY_CAP = 120;
    uint256 private constant F_WINDOW = 8; // startsAt | min(endsAt, block.timestamp) << 64
    uint256 private constant F_CAMPAIGN = 9; // campaign id (Rejected topic)
    uint256 private constant F_TAG = 10; // campaign id << 200, its field in Rewarded.record
    uint256 private constant F_SETTLED = 11; // storage slot of _settledIds[campaignId]
    uint256 private constant F_BATCH_START = 12; // calldata position of the batch, to report offsets in errors
    uint256 private constant F_CONSUMER = 13; // the group being settled
    uint256 private constant F_CONSENT = 14; // its consent record, zero once expired
    uint256 private constant F_REJECTED = 15; // engagements rejected so far in this batch
    // The settled-ids bitmap word in use, kept across engagements and groups and written back when the ids move
    // to another word (and at the end of the batch): one SLOAD and one SSTORE per run of ids in one word.
    uint256 private constant F_WORD_INDEX = 16; // eventId >> 8 of the cached word; NO_WORD when none
    uint256 private constant F_WORD_SLOT = 17; // its storage slot
    uint256 private constant F_WORD_BITS = 18; // its bits, including this batch's
    uint256 private constant F_BRAND = 19; // whose consent engagements need
    uint256 private constant F_ACCOUNTS = 20; // storage slot of _accounts[campaignId]
    uint256 private constant FRAME_WORDS = 21;
    uint256 private constant NO_WORD = 0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff;

    struct Campaign {
        // slot 0: read by every batch and every management call
        address marketer;
        uint40 startsAt;
        uint40 endsAt;
        Status status;
        // slot 1
        address token;
        uint64 purposes; // 8 x uint8, action i at bits 8i
        // slot 2
        address brand;
        uint64 lifetimeCaps; // 8 x uint8
        // slot 3: both written once per batch
        uint128 budget; // unspent, not yet owed to anyone
        uint128 owed; // accrued to consumers, not yet claimed
        // slot 4
        uint64 dailyCaps; // 8 x uint8
        // slots 5..8
        uint96[8] rewards;
    }

    IConsentRegistry public immutable registry;

    uint256 private _campaignCount;
    mapping(uint256 campaignId => Campaign) private _campaigns;
    mapping(uint256 campaignId => mapping(address attester => bool)) private _attesters;
    mapping(uint256 campaignId => mapping(address consumer => uint256 word)) private _accounts;
    mapping(uint256 campaignId => mapping(uint256 wordIndex => uint256 bits)) private _settledIds;

    constructor(IConsentRegistry registry_) EIP712("adledger CampaignEscrow", "1") {
        registry = registry_;
    }

    /* CAMPAIGNS */

    /// @inheritdoc ICampaignEscrow
    function createCampaign(CampaignTerms calldata terms_, address[] calldata attesters, uint256 budget)
        external
        nonReentrant
        returns (uint256)
    {
        return _create(terms_, attesters, budget);
    }

    /// @inheritdoc ICampaignEscrow
    function createCampaignWithPermit(
        CampaignTerms calldata terms_,
        address[] calldata attesters,
        uint256 budget,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256) {
        // checked before the call: a high-level call to an address without code reverts outside the try
        if (terms_.token.code.length == 0) revert EscrowInvalidToken(terms_.token);
        // A front-runner may have spent the permit already; the allowance then decides (OpenZeppelin's advice).
        try IERC20Permit(terms_.token).permit(msg.sender, address(this), budget, deadline, v, r, s) {} catch {}
        return _create(terms_, attesters, budget);
    }

    /// @inheritdoc ICampaignEscrow
    function topUp(uint256 campaignId, uint256 amount) external nonReentrant {
        Campaign storage c = _managed(campaignId);
        if (c.status == Status.Closed) revert EscrowCampaignClosed(campaignId);
        if (amount == 0) revert EscrowZeroAmount();
        uint256 budget = c.budget;
        _checkBudget(campaignId, budget + c.owed, amount);
        budget += amount;
        c.budget = uint128(budget);
        emit CampaignFunded(campaignId, msg.sender, amount, budget);
        _pull(IERC20(c.token), amount);
    }

    /// @inheritdoc ICampaignEscrow
    function pause(uint256 campaignId) external {
        Campaign storage c = _managed(campaignId);
        _requireActive(campaignId, c.status);
        c.status = Status.Paused;
        emit CampaignPaused(campaignId);
    }

    /// @inheritdoc ICampaignEscrow
    function unpause(uint256 campaignId) external {
        Campaign storage c = _managed(campaignId);
        if (c.status == Status.Closed) revert EscrowCampaignClosed(campaignId);
        if (c.status != Status.Paused) revert EscrowCampaignNotPaused(campaignId);
        c.status = Status.Active;
        emit CampaignUnpaused(campaignId);
    }

    /// @inheritdoc ICampaignEscrow
    function addAttester(uint256 campaignId, address attester) external {
        Campaign storage c = _managed(campaignId);
        if (c.status == Status.Closed) revert EscrowCampaignClosed(campaignId);
        _addAttester(campaignId, attester);
    }

    /// @inheritdoc ICampaignEscrow
    function removeAttester(uint256 campaignId, address attester) external {
        _managed(campaignId);
        if (!_attesters[campaignId][attester]) revert EscrowAttesterNotFound(campaignId, attester);
        _attesters[campaignId][attester] = false;
        emit AttesterRemoved(campaignId, attester);
    }

    /// @inheritdoc ICampaignEscrow
    function close(uint256 campaignId) external nonReentrant returns (uint256 refund) {
        Campaign storage c = _managed(campaignId);
        if (c.status == Status.Closed) revert EscrowCampaignClosed(campaignId);
        if (block.timestamp <= c.endsAt) revert EscrowCampaignNotEnded(campaignId, c.endsAt, block.timestamp);
        refund = c.budget;
        c.budget = 0;
        c.status = Status.Closed;
        emit CampaignClosed(campaignId, refund, c.owed);
        if (refund != 0) IERC20(c.token).safeTransfer(msg.sender, refund);
    }

    /* SETTLEMENT */

    /// @inheritdoc ICampaignEscrow
    function settle(uint256 campaignId, bytes calldata batch) external nonReentrant {
        _settle(campaignId, batch, msg.sender);
    }

    /// @inheritdoc ICampaignEscrow
    function settleBySig(
        uint256 campaignId,
        bytes calldata batch,
        address attester,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant {
        bytes32 structHash = keccak256(
            abi.encode(SETTLEMENT_TYPEHASH, attester, campaignId, keccak256(batch), _useNonce(attester), deadline)
        );
        _checkSignature(attester, structHash, deadline, signature);
        _settle(campaignId, batch, attester);
    }

    /* CLAIMS */

    /// @inheritdoc ICampaignEscrow
    function claim(uint256[] calldata campaignIds, address to) external nonReentrant returns (uint256) {
        return _claim(msg.sender, campaignIds, to);
    }

    /// @inheritdoc ICampaignEscrow
    function claimBySig(
        address consumer,
        uint256[] calldata campaignIds,
        address to,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant returns (uint256) {
        bytes32 structHash = keccak256(
            abi.encode(
                CLAIM_TYPEHASH, consumer, keccak256(abi.encodePacked(campaignIds)), to, _useNonce(consumer), deadline
            )
        );
        _checkSignature(consumer, structHash, deadline, signature);
        return _claim(consumer, campaignIds, to);
    }

    /* VIEWS */

    /// @inheritdoc ICampaignEscrow
    function terms(uint256 campaignId) external view returns (CampaignTerms memory t) {
        Campaign storage c = _existing(campaignId);
        t.token = c.token;
        t.brand = c.brand;
        t.startsAt = c.startsAt;
        t.endsAt = c.endsAt;
        t.rewards = c.rewards;
        for (uint256 a = 0; a < ACTION_COUNT; ++a) {
            t.purposes[a] = uint8(c.purposes >> (8 * a));
            t.lifetimeCaps[a] = uint8(c.lifetimeCaps >> (8 * a));
            t.dailyCaps[a] = uint8(c.dailyCaps >> (8 * a));
        }
    }

    /// @inheritdoc ICampaignEscrow
    function campaignState(uint256 campaignId)
        external
        view
        returns (address marketer, Status status, uint256 budget, uint256 owed)
    {
        Campaign storage c = _existing(campaignId);
        return (c.marketer, c.status, c.budget, c.owed);
    }

    /// @inheritdoc ICampaignEscrow
    function accountOf(uint256 campaignId, address consumer)
        external
        view
        returns (uint256 accrued, uint256 day, uint8[8] memory lifetimeCounts, uint8[8] memory dailyCounts)
    {
        uint256 word = _accounts[campaignId][consumer];
        accrued = word & ACCRUED_MASK;
        day = (word >> DAY_SHIFT) & DAY_MASK;
        for (uint256 a = 0; a < ACTION_COUNT; ++a) {
            lifetimeCounts[a] = uint8(word >> (LIFETIME_SHIFT + 8 * a));
            dailyCounts[a] = uint8(word >> (DAILY_SHIFT + 8 * a));
        }
    }

    /// @inheritdoc ICampaignEscrow
    function isAttester(uint256 campaignId, address attester) external view returns (bool) {
        return _attesters[campaignId][attester];
    }

    /// @inheritdoc ICampaignEscrow
    function isSettled(uint256 campaignId, uint256 eventId) external view returns (bool) {
        return _settledIds[campaignId][eventId >> 8] & (1 << (eventId & 0xff)) != 0;
    }

    /// @inheritdoc ICampaignEscrow
    function campaignCount() external view returns (uint256) {
        return _campaignCount;
    }

    /// @notice The EIP-712 domain separator of this escrow (chain id and address bound).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /* INTERNALS: CAMPAIGNS */

    function _create(CampaignTerms calldata t, address[] calldata attesters, uint256 budget)
        private
        returns (uint256 campaignId)
    {
        if (t.token.code.length == 0) revert EscrowInvalidToken(t.token);
        if (t.brand == address(0)) revert EscrowInvalidBrand(t.brand);
        if (t.startsAt >= t.endsAt || t.endsAt <= block.timestamp) revert EscrowInvalidDates(t.startsAt, t.endsAt);
        if (budget == 0) revert EscrowZeroAmount();
        uint256 purposes;
        uint256 lifetimeCaps;
        uint256 dailyCaps;
        for (uint256 a = 0; a < ACTION_COUNT; ++a) {
            if (t.purposes[a] & ~ConsentRecord.ALL_PURPOSES != 0) revert EscrowInvalidPurposes(a, t.purposes[a]);
            purposes |= uint256(t.purposes[a]) << (8 * a);
            lifetimeCaps |= uint256(t.lifetimeCaps[a]) << (8 * a);
            dailyCaps |= uint256(t.dailyCaps[a]) << (8 * a);
        }
        if (purposes == 0) revert EscrowInvalidPurposes(ACTION_COUNT, 0);
        // Ids fit the 48-bit campaign field of Rewarded.record: 2.8e14 campaigns before this could bind.
        campaignId = ++_campaignCount;
        _checkBudget(campaignId, 0, budget);

        Campaign storage c = _campaigns[campaignId];
        c.marketer = msg.sender;
        c.startsAt = t.startsAt;
        c.endsAt = t.endsAt;
        c.status = Status.Active;
        c.token = t.token;
        c.purposes = uint64(purposes);
        c.brand = t.brand;
        c.lifetimeCaps = uint64(lifetimeCaps);
        c.budget = uint128(budget);
        c.dailyCaps = uint64(dailyCaps);
        c.rewards = t.rewards;
        emit CampaignCreated(campaignId, msg.sender, t.token, t, budget);
        for (uint256 i = 0; i < attesters.length; ++i) {
            _addAttester(campaignId, attesters[i]);
        }
        _pull(IERC20(t.token), budget);
    }

    function _addAttester(uint256 campaignId, address attester) private {
        if (attester == address(0)) revert EscrowInvalidAttester(attester);
        if (_attesters[campaignId][attester]) revert EscrowAttesterAlreadyAdded(campaignId, attester);
        _attesters[campaignId][attester] = true;
        emit AttesterAdded(campaignId, attester);
    }

    /// @dev Pulls exactly `amount` from the caller; a token that delivers less (fee on transfer) is refused,
    /// because the budget must equal what the escrow holds.
    function _pull(IERC20 token, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert EscrowTransferShortfall(address(token), amount, received);
    }

    /// @dev Refuses funding that would take budget + owed (`held`, below MAX_BUDGET) past MAX_BUDGET; `added` may be
    /// anything up to 2^256 - 1, so the sum is reported saturated rather than overflowing.
    function _checkBudget(uint256 campaignId, uint256 held, uint256 added) private pure {
        if (added > MAX_BUDGET - held) {
            uint256 total;
            unchecked {
                total = held + added < held ? type(uint256).max : held + added;
            }
            revert EscrowBudgetTooLarge(campaignId, total, MAX_BUDGET);
        }
    }

    function _existing(uint256 campaignId) private view returns (Campaign storage c) {
        c = _campaigns[campaignId];
        if (c.status == Status.None) revert EscrowUnknownCampaign(campaignId);
    }

    function _managed(uint256 campaignId) private view returns (Campaign storage c) {
        c = _existing(campaignId);
        if (c.marketer != msg.sender) revert EscrowNotMarketer(campaignId, msg.sender);
    }

    function _requireActive(uint256 campaignId, Status status) private pure {
        if (status == Status.Paused) revert EscrowCampaignPaused(campaignId);
        if (status == Status.Closed) revert EscrowCampaignClosed(campaignId);
    }

    function _checkSignature(address signer, bytes32 structHash, uint256 deadline, bytes calldata signature)
        private
        view
    {
        if (block.timestamp > deadline) revert EscrowExpiredSignature(deadline);
        if (!SignatureChecker.isValidSignatureNow(signer, _hashTypedDataV4(structHash), signature)) {
            revert EscrowInvalidSigner(signer);
        }
    }

    /* INTERNALS: SETTLEMENT */

    function _settle(uint256 campaignId, bytes calldata batch, address attester) private {
        Campaign storage c = _existing(campaignId);
        _requireActive(campaignId, c.status);
        if (!_attesters[campaignId][attester]) revert EscrowNotAttester(campaignId, attester);
        if (batch.length == 0) revert EscrowMalformedBatch(0);

        uint256[FRAME_WORDS] memory f = _frame(c, campaignId, batch);
        uint256 budgetBefore = c.budget;
        (uint256 budget, uint256 engagements) = _settleGroups(f, batch, budgetBefore);

        if (f[F_WORD_INDEX] != NO_WORD) _settledIds[campaignId][f[F_WORD_INDEX]] = f[F_WORD_BITS];
        // What the batch paid moves from budget to owed, in one write (slot 3); owed + budget stays as it was.
        uint256 amount = budgetBefore - budget;
        c.budget = uint128(budget);
        c.owed += uint128(amount);
        emit BatchSettled(campaignId, attester, engagements - f[F_REJECTED], f[F_REJECTED], amount, budget);
    }

    /// @dev Settles every consumer group of the batch; returns the budget left and the number of engagements.
    /// Kept apart from _settle so the loops run with few live variables (the rest waits in the frame).
    function _settleGroups(uint256[FRAME_WORDS] memory f, bytes calldata batch, uint256 budget)
        private
        returns (uint256, uint256 engagements)
    {
        uint256 offset = 0;
        while (offset < batch.length) {
            (address consumer, uint256 count) = _readGroupHeader(batch, offset);
            uint256 consent = _consentRecord(consumer, address(uint160(f[F_BRAND])));
            // consent must still be active at settlement, whatever the engagement's time
            if (block.timestamp >= ConsentRecord.expiresAt(consent)) consent = 0;
            f[F_CONSUMER] = uint160(consumer);
            f[F_CONSENT] = consent;
            // the account word's slot, _accounts[campaignId][consumer], computed once for one read and one write
            uint256 accountSlot;
            uint256 account;
            uint256 accounts = f[F_ACCOUNTS];
            assembly ("memory-safe") {
                mstore(0x00, consumer)
                mstore(0x20, accounts)
                accountSlot := keccak256(0x00, 0x40)
                account := sload(accountSlot)
            }
            unchecked {
                // count <= 255 and the group lies inside the batch (checked by _readGroupHeader): no overflow
                (account, budget) =
                    _settleEngagements(f, f[F_BATCH_START] + offset + GROUP_HEADER_BYTES, count, account, budget);
                offset += GROUP_HEADER_BYTES + count * ENGAGEMENT_BYTES;
                engagements += count;
            }
            assembly ("memory-safe") {
                sstore(accountSlot, account)
            }
        }
        return (budget, engagements);
    }

    /// @dev The consumer and engagement count of the group at `offset`, after checking the group fits the batch.
    function _readGroupHeader(bytes calldata batch, uint256 offset)
        private
        pure
        returns (address consumer, uint256 count)
    {
        uint256 length = batch.length;
        if (length - offset < GROUP_HEADER_BYTES) revert EscrowMalformedBatch(offset);
        assembly ("memory-safe") {
            // Safe: the 21 header bytes lie inside `batch` (checked above); calldataload reads 32 bytes and the
            // shifts keep only the first 20 (address) and the 21st (count).
            let w := calldataload(add(batch.offset, offset))
            consumer := shr(96, w)
            count := byte(20, w)
        }
        if (consumer == address(0) || count == 0) revert EscrowMalformedBatch(offset);
        // count <= 255, so no overflow; the engagements must lie inside the batch
        if (length - offset - GROUP_HEADER_BYTES < count * ENGAGEMENT_BYTES) {
            revert EscrowMalformedBatch(offset + GROUP_HEADER_BYTES);
        }
    }

    /// @dev The settlement frame (layout at F_*): the campaign's rules, read from storage once per batch.
    function _frame(Campaign storage c, uint256 campaignId, bytes calldata batch)
        private
        view
        returns (uint256[FRAME_WORDS] memory f)
    {
        uint256 purposes = c.purposes;
        uint256 lifetimeCaps = c.lifetimeCaps;
        uint256 dailyCaps = c.dailyCaps;
        for (uint256 a = 0; a < ACTION_COUNT; ++a) {
            uint256 required = (purposes >> (8 * a)) & 0xff;
            f[a] = uint256(c.rewards[a]) | (required << POLICY_PURPOSES)
                | (ConsentRecord.grantShift(required) << POLICY_GRANT)
                | (((lifetimeCaps >> (8 * a)) & 0xff) << POLICY_LIFETIME_CAP)
                | (((dailyCaps >> (8 * a)) & 0xff) << POLICY_DAILY_CAP);
        }
        // an engagement must lie in [startsAt, endsAt] and not after this block
        uint256 latest = c.endsAt < block.timestamp ? c.endsAt : block.timestamp;
        f[F_WINDOW] = uint256(c.startsAt) | (latest << 64);
        f[F_CAMPAIGN] = campaignId;
        f[F_TAG] = campaignId << RECORD_CAMPAIGN_SHIFT;
        mapping(uint256 => uint256) storage settled = _settledIds[campaignId];
        uint256 settledSlot;
        uint256 batchStart;
        assembly ("memory-safe") {
            settledSlot := settled.slot
            batchStart := batch.offset
        }
        f[F_SETTLED] = settledSlot;
        f[F_BATCH_START] = batchStart;
        f[F_WORD_INDEX] = NO_WORD;
        f[F_BRAND] = uint160(c.brand);
        mapping(address => uint256) storage accounts = _accounts[campaignId];
        uint256 accountsSlot;
        assembly ("memory-safe") {
            accountsSlot := accounts.slot
        }
        f[F_ACCOUNTS] = accountsSlot;
    }

    /// @dev registry.consentRecord(consumer, brand), called by hand: this runs once per consumer of every batch,
    /// and the compiler's call sequence (ABI encoder, return-data decoder) cost ~300 gas more.
    function _consentRecord(address consumer, address brand) private view returns (uint256 record) {
        address target = address(registry);
        bytes4 selector = IConsentRegistry.consentRecord.selector;
        assembly ("memory-safe") {
            // Safe: the call data is built past the free memory pointer (temporary memory) and the one-word answer
            // lands in the scratch space; a failed call or a short answer reverts with what the registry said.
            let p := mload(0x40)
            mstore(p, selector)
            mstore(add(p, 4), consumer)
            mstore(add(p, 36), brand)
            if iszero(and(gt(returndatasize(), 31), staticcall(gas(), target, p, 68, 0x00, 0x20))) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
            record := mload(0x00)
        }
    }

    /// @dev Settles one consumer's `count` engagements from calldata position `cursor`, which the caller checked
    /// lie inside the batch, and returns the consumer's updated account word and the budget left.
    ///
    /// This is the loop that runs once per engagement, written in assembly because it decides the cost of every
    /// reward: the compiler's version of the same rules spent ~1,000 more gas per engagement on stack shuffling,
    /// memory spills and bounds checks. Every rule is the one documented in ICampaignEscrow, applied in the order
    /// of RejectReason; the Python tests (tests/contracts/test_campaign_escrow_settlement.py) exercise each.
    /// Why it is safe: reads stay inside the group's count * 44 bytes; writes go to the scratch space (0x00-0x3f),
    /// to the frame `f` (which the caller owns), to this campaign's settled-ids bitmap, and, for the revert, past
    /// the free memory pointer; all arithmetic is bounded as commented.
    function _settleEngagements(
        uint256[FRAME_WORDS] memory f,
        uint256 cursor,
        uint256 count,
        uint256 account,
        uint256 budget
    ) private returns (uint256, uint256) {
        bytes32 rewardedTopic = Rewarded.selector;
        bytes32 rejectedTopic = Rejected.selector;
        bytes4 invalidAction = EscrowInvalidAction.selector;
        assembly ("memory-safe") {
            function field(frame, index) -> value {
                value := mload(add(frame, shl(5, index)))
            }

            // emit Rejected(campaignId, consumer, eventId, reason), and count it
            function reject(frame, eventId, reason, topic) {
                mstore(0x00, eventId)
                mstore(0x20, reason)
                log3(0x00, 0x40, topic, field(frame, F_CAMPAIGN), field(frame, F_CONSUMER))
                let p := add(frame, shl(5, F_REJECTED)) // at most one per engagement: cannot overflow
                mstore(p, add(mload(p), 1))
            }

            // Whether `consent` holds every purpose of `required` (several bits), each granted at or before `time`
            function grantedAll(consent, required, time) -> ok {
                ok := 1
                for { let i := 0 } lt(i, 6) { i := add(i, 1) } {
                    if and(shr(i, required), 1) {
                        // purpose i's uint32 grant time sits at bit 64 + 32 i (ConsentRecord)
                        if gt(and(shr(add(64, shl(5, i)), consent), 0xffffffff), time) { ok := 0 }
                    }
                }
            }

            // The RejectReason for an engagement (`head`: its first 32 bytes) under `policy`, or 0 (None) with
            // `updated` = the account word with this engagement's counters advanced (not yet its amount).
            function evaluate(frame, head, policy, account_, budget_) -> reason, updated {
                updated := account_
                let required := and(shr(POLICY_PURPOSES, policy), 0xff)
                if iszero(required) {
                    reason := 2 // ActionNotOffered
                    leave
                }
                let time := and(shr(160, head), 0xffffffffff)
                // startsAt | min(endsAt, now) << 64: one test covers the dates and the future
                let window := field(frame, F_WINDOW)
                if or(lt(time, and(window, 0xffffffffff)), gt(time, shr(64, window))) {
                    reason := 4 // OutsideCampaignDates
                    if gt(time, timestamp()) { reason := 3 } // TimeInFuture
                    leave
                }
                // consent (zero once expired) must hold the purposes, each granted by the engagement's time; the
                // policy's grant shift locates a single required purpose's grant time (0: several purposes)
                let consent := field(frame, F_CONSENT)
                let grantShift := and(shr(POLICY_GRANT, policy), 0xff)
                let refused := iszero(eq(and(consent, required), required))
                switch grantShift
                case 0 { refused := or(refused, iszero(grantedAll(consent, required, time))) }
                default { refused := or(refused, gt(and(shr(grantShift, consent), 0xffffffff), time)) }
                if refused {
                    reason := 5 // NoConsent
                    leave
                }
                let shift := shl(3, shr(248, head)) // the action's 8-bit lane in each counter field
                let lifetimeCount := and(shr(add(LIFETIME_SHIFT, shift), account_), 0xff)
                let lifetimeCap := and(shr(POLICY_LIFETIME_CAP, policy), 0xff)
                if and(gt(lifetimeCap, 0), iszero(lt(lifetimeCount, lifetimeCap))) {
                    reason := 6 // LifetimeCapReached
                    leave
                }
                let dailyCap := and(shr(POLICY_DAILY_CAP, policy), 0xff)
                if dailyCap {
                    let day := div(time, 86400) // UTC day; < 2^24 since time < 2^40
                    let lastDay := and(shr(DAY_SHIFT, account_), DAY_MASK)
                    if lt(day, lastDay) {
                        reason := 8 // StaleDay
                        leave
                    }
                    if gt(day, lastDay) {
                        // a new UTC day: record it, and every capped action's daily count starts again
                        let stale := or(shl(DAY_SHIFT, DAY_MASK), shl(DAILY_SHIFT, COUNTS_MASK))
                        updated := or(and(updated, not(stale)), shl(DAY_SHIFT, day))
                    }
                    if iszero(lt(and(shr(add(DAILY_SHIFT, shift), updated), 0xff), dailyCap)) {
                        reason := 7 // DailyCapReached
                        leave
                    }
                    // below the cap (<= 255), so the 8-bit count cannot carry into its neighbour
                    updated := add(updated, shl(add(DAILY_SHIFT, shift), 1))
                }
                if gt(and(policy, POLICY_REWARD_MASK), budget_) {
                    reason := 9 // BudgetExhausted
                    leave
                }
                // lifetime counters saturate at 255 (an uncapped action's count is informational)
                if lt(lifetimeCount, 0xff) { updated := add(updated, shl(add(LIFETIME_SHIFT, shift), 1)) }
            }

            // The settled-ids bitmap word, _settledIds[campaignId][eventId >> 8], stays on the stack while
            // consecutive engagements fall in it and is written back when they move on (F_WORD_*).
            let wordIndex := field(f, F_WORD_INDEX)
            let slot := field(f, F_WORD_SLOT)
            let bits := field(f, F_WORD_BITS)
            for { } count { count := sub(count, 1) cursor := add(cursor, ENGAGEMENT_BYTES) } {
                // head: action (byte 0) | eventId (bytes 1..6) | time (bytes 7..11) | first 20 evidence bytes
                let head := calldataload(cursor)
                let action := shr(248, head)
                if iszero(lt(action, ACTION_COUNT)) {
                    // revert EscrowInvalidAction(offset in batch, action), built past the free memory pointer
                    let p := mload(0x40)
                    mstore(p, invalidAction)
                    mstore(add(p, 4), sub(cursor, field(f, F_BATCH_START)))
                    mstore(add(p, 36), action)
                    revert(p, 68)
                }
                let eventId := and(shr(200, head), 0xffffffffffff)
                if iszero(eq(shr(8, eventId), wordIndex)) {
                    if iszero(eq(wordIndex, NO_WORD)) { sstore(slot, bits) }
                    wordIndex := shr(8, eventId)
                    // Solidity's mapping layout: keccak256(key . mapping slot)
                    mstore(0x00, wordIndex)
                    mstore(0x20, field(f, F_SETTLED))
                    slot := keccak256(0x00, 0x40)
                    bits := sload(slot)
                }
                let bit := shl(and(eventId, 0xff), 1)
                switch and(bits, bit)
                case 0 {
                    // settled once, paid or rejected, so every engagement has exactly one final outcome
                    bits := or(bits, bit)
                    let policy := mload(add(f, shl(5, action)))
                    let reason, updated := evaluate(f, head, policy, account, budget)
                    switch reason
                    case 0 {
                        let amount := and(policy, POLICY_REWARD_MASK)
                        // amount <= budget (checked); accrued <= owed < budget + owed <= MAX_BUDGET < 2^104, so
                        // the accrued field cannot carry into the day field
                        account := add(updated, amount)
                        budget := sub(budget, amount)
                        // emit Rewarded(consumer, record, evidence): action | eventId | time (the head's first
                        // 96 bits) land on their record fields when moved from bit 160 to RECORD_TIME_SHIFT
                        mstore(0x00, or(field(f, F_TAG), or(shl(RECORD_TIME_SHIFT, shr(160, head)), amount)))
                        calldatacopy(0x20, add(cursor, 12), 32)
                        log2(0x00, 0x40, rewardedTopic, field(f, F_CONSUMER))
                    }
                    default { reject(f, eventId, reason, rejectedTopic) }
                }
                default { reject(f, eventId, 1, rejectedTopic) } // DuplicateEvent
            }
            mstore(add(f, shl(5, F_WORD_INDEX)), wordIndex)
            mstore(add(f, shl(5, F_WORD_SLOT)), slot)
            mstore(add(f, shl(5, F_WORD_BITS)), bits)
        }
        return (account, budget);
    }

    /* INTERNALS: CLAIMS */

    function _claim(address consumer, uint256[] calldata campaignIds, address to) private returns (uint256 total) {
        if (to == address(0)) revert EscrowInvalidRecipient(to);
        for (uint256 i = 0; i < campaignIds.length; ++i) {
            uint256 campaignId = campaignIds[i];
            uint256 word = _accounts[campaignId][consumer];
            uint256 accrued = word & ACCRUED_MASK;
            if (accrued == 0) continue;
            // the counters stay, so the word stays nonzero and the next settlement pays 2,900 gas, not 20,000
            _accounts[campaignId][consumer] = word & ~ACCRUED_MASK;
            Campaign storage c = _campaigns[campaignId];
            c.owed -= uint128(accrued);
            total += accrued;
            emit Claimed(campaignId, consumer, to, accrued);
            IERC20(c.token).safeTransfer(to, accrued);
        }
        if (total == 0) revert EscrowNothingToClaim(consumer);
    }
}
