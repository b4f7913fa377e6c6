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
    uint256 private constant COUNTS_MASK = type(uint64).max;

    // Rewarded.record fields (see ICampaignEscrow)
    uint256 private constant RECORD_TIME_SHIFT = 104;
    uint256 private constant RECORD_ACTION_SHIFT = 144;
    uint256 private constant RECORD_EVENT_SHIFT = 152;
    uint256 private constant RECORD_CAMPAIGN_SHIFT = 200;

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

    /// @dev A batch's working state, in memory so that the hot loop neither re-reads storage nor runs out of stack.
    struct Batch {
        uint256 campaignId;
        uint256 campaignTag; // campaignId pre-shifted into Rewarded.record
        address brand;
        uint256 startsAt;
        uint256 endsAt;
        uint256 purposes;
        uint256 lifetimeCaps;
        uint256 dailyCaps;
        uint256[8] rewards;
        uint256 budget;
        uint256 owed;
        uint256 paid;
        uint256 rejected;
        uint256 amount;
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
        // A front-runner may have spent the permit already; the allowance then decides (OpenZeppelin's advice).
        try IERC20Permit(terms_.token).permit(msg.sender, address(this), budget, deadline, v, r, s) {} catch {}
        return _create(terms_, attesters, budget);
    }

    /// @inheritdoc ICampaignEscrow
    function topUp(uint256 campaignId, uint256 amount) external nonReentrant {
        Campaign storage c = _managed(campaignId);
        if (c.status == Status.Closed) revert EscrowCampaignClosed(campaignId);
        if (amount == 0) revert EscrowZeroAmount();
        uint256 budget = _checkedBudget(campaignId, c.budget + amount, c.owed);
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
        _checkedBudget(campaignId, budget, 0);

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

    function _checkedBudget(uint256 campaignId, uint256 budget, uint256 owed) private pure returns (uint256) {
        if (budget + owed > MAX_BUDGET) revert EscrowBudgetTooLarge(campaignId, budget + owed, MAX_BUDGET);
        return budget;
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

        Batch memory b = _loadBatch(c, campaignId);
        mapping(address => uint256) storage accounts = _accounts[campaignId];
        mapping(uint256 => uint256) storage settled = _settledIds[campaignId];
        uint256 length = batch.length;
        uint256 offset = 0;
        while (offset < length) {
            if (length - offset < GROUP_HEADER_BYTES) revert EscrowMalformedBatch(offset);
            address consumer;
            uint256 count;
            assembly ("memory-safe") {
                // Safe: the 21 header bytes lie inside `batch` (checked above); calldataload reads 32 bytes and
                // the shifts keep only the first 20 (address) and the 21st (count).
                let w := calldataload(add(batch.offset, offset))
                consumer := shr(96, w)
                count := byte(20, w)
            }
            if (consumer == address(0) || count == 0) revert EscrowMalformedBatch(offset);
            offset += GROUP_HEADER_BYTES;
            if (length - offset < count * ENGAGEMENT_BYTES) revert EscrowMalformedBatch(offset);

            uint256 consent = registry.consentRecord(consumer, b.brand);
            // consent must still be active at settlement, whatever the engagement's time
            if (block.timestamp >= ConsentRecord.expiresAt(consent)) consent = 0;
            uint256 account = accounts[consumer];
            for (uint256 i = 0; i < count; ++i) {
                account = _settleOne(b, batch, offset, consumer, consent, account, settled);
                offset += ENGAGEMENT_BYTES;
            }
            accounts[consumer] = account;
        }

        // one write for both (slot 3)
        c.budget = uint128(b.budget);
        c.owed = uint128(b.owed);
        emit BatchSettled(campaignId, attester, b.paid, b.rejected, b.amount, b.budget);
    }

    function _loadBatch(Campaign storage c, uint256 campaignId) private view returns (Batch memory b) {
        b.campaignId = campaignId;
        b.campaignTag = campaignId << RECORD_CAMPAIGN_SHIFT;
        b.brand = c.brand;
        b.startsAt = c.startsAt;
        b.endsAt = c.endsAt;
        b.purposes = c.purposes;
        b.lifetimeCaps = c.lifetimeCaps;
        b.dailyCaps = c.dailyCaps;
        for (uint256 a = 0; a < ACTION_COUNT; ++a) {
            b.rewards[a] = c.rewards[a];
        }
        b.budget = c.budget;
        b.owed = c.owed;
    }

    /// @dev Settles the engagement at `offset` and returns the consumer's updated account word.
    function _settleOne(
        Batch memory b,
        bytes calldata batch,
        uint256 offset,
        address consumer,
        uint256 consent,
        uint256 account,
        mapping(uint256 => uint256) storage settled
    ) private returns (uint256) {
        uint256 action;
        uint256 eventId;
        uint256 time;
        bytes32 evidence;
        assembly ("memory-safe") {
            // Safe: the caller checked that all 44 bytes of this engagement lie inside `batch`, so no read is
            // out of bounds; the masks cut each field to its width.
            let p := add(batch.offset, offset)
            let w := calldataload(p)
            action := byte(0, w)
            eventId := and(shr(200, w), 0xffffffffffff)
            time := and(shr(160, w), 0xffffffffff)
            evidence := calldataload(add(p, 12))
        }
        if (action >= ACTION_COUNT) revert EscrowInvalidAction(offset, action);

        uint256 bit = 1 << (eventId & 0xff);
        uint256 bits = settled[eventId >> 8];
        if (bits & bit != 0) return _reject(b, consumer, eventId, RejectReason.DuplicateEvent, account);
        // an id is settled once, paid or rejected, so every engagement has exactly one final outcome
        settled[eventId >> 8] = bits | bit;

        (RejectReason reason, uint256 updated) = _apply(b, action, time, consent, account);
        if (reason != RejectReason.None) return _reject(b, consumer, eventId, reason, account);

        uint256 amount = b.rewards[action];
        uint256 record = b.campaignTag | (eventId << RECORD_EVENT_SHIFT) | (action << RECORD_ACTION_SHIFT)
            | (time << RECORD_TIME_SHIFT) | amount;
        bytes32 topic = Rewarded.selector;
        assembly ("memory-safe") {
            // emit Rewarded(consumer, record, evidence), from the scratch space (0x00-0x3f), which Solidity
            // leaves free between statements: no free-memory-pointer bump and no ABI encoder for two words.
            mstore(0x00, record)
            mstore(0x20, evidence)
            log2(0x00, 0x40, topic, consumer)
        }
        return updated;
    }

    /// @dev Applies the campaign's rules to one engagement; on success the budget moves to owed and the returned
    /// account word carries the accrual and counters. On rejection nothing changes.
    function _apply(Batch memory b, uint256 action, uint256 time, uint256 consent, uint256 account)
        private
        view
        returns (RejectReason, uint256)
    {
        uint256 shift = 8 * action;
        uint256 required = (b.purposes >> shift) & 0xff;
        if (required == 0) return (RejectReason.ActionNotOffered, account);
        if (time > block.timestamp) return (RejectReason.TimeInFuture, account);
        if (time < b.startsAt || time > b.endsAt) return (RejectReason.OutsideCampaignDates, account);
        if (!ConsentRecord.covers(consent, required, time)) return (RejectReason.NoConsent, account);

        uint256 lifetimeCount = (account >> (LIFETIME_SHIFT + shift)) & 0xff;
        uint256 lifetimeCap = (b.lifetimeCaps >> shift) & 0xff;
        if (lifetimeCap != 0 && lifetimeCount >= lifetimeCap) return (RejectReason.LifetimeCapReached, account);

        uint256 updated = account;
        uint256 dailyCap = (b.dailyCaps >> shift) & 0xff;
        if (dailyCap != 0) {
            uint256 day = time / 1 days;
            uint256 lastDay = (account >> DAY_SHIFT) & DAY_MASK;
            if (day < lastDay) return (RejectReason.StaleDay, account);
            if (day > lastDay) {
                // a new UTC day: every capped action's daily count starts again
                updated &= ~((DAY_MASK << DAY_SHIFT) | (COUNTS_MASK << DAILY_SHIFT));
                updated |= day << DAY_SHIFT;
            }
            if (((updated >> (DAILY_SHIFT + shift)) & 0xff) >= dailyCap) return (RejectReason.DailyCapReached, account);
            // below the cap, which is at most 255, so the 8-bit count cannot overflow
            updated += 1 << (DAILY_SHIFT + shift);
        }

        uint256 amount = b.rewards[action];
        if (amount > b.budget) return (RejectReason.BudgetExhausted, account);

        // Counters saturate at 255; an uncapped action's count is informational.
        if (lifetimeCount < 0xff) updated += 1 << (LIFETIME_SHIFT + shift);
        unchecked {
            // amount <= budget, and accrued <= owed < budget + owed <= MAX_BUDGET < 2^104 (checked at funding)
            updated += amount;
            b.budget -= amount;
            b.owed += amount;
            b.amount += amount;
            ++b.paid;
        }
        return (RejectReason.None, updated);
    }

    function _reject(Batch memory b, address consumer, uint256 eventId, RejectReason reason, uint256 account)
        private
        returns (uint256)
    {
        ++b.rejected;
        emit Rejected(b.campaignId, consumer, eventId, reason);
        return account;
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
