// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The packed consent record shared by ConsentRegistry (writes) and CampaignEscrow (reads)
/// @dev Layout in IConsentRegistry: purposes in bits 0..7, expiresAt in bits 8..47, and six uint32 grant times
/// from bit 64. Pure functions only, so both contracts interpret one word the same way.
library ConsentRecord {
    uint256 internal constant PURPOSE_COUNT = 6;
    /// ADS | EMAIL | LOCATION | PROFILE | PURCHASES | ANALYTICS
    uint256 internal constant ALL_PURPOSES = 0x3f;

    uint256 private constant EXPIRY_SHIFT = 8;
    uint256 private constant EXPIRY_MASK = 0xffffffffff; // uint40
    uint256 private constant GRANTED_SHIFT = 64;
    uint256 private constant GRANTED_MASK = 0xffffffff; // uint32

    function purposes(uint256 record) internal pure returns (uint256) {
        return record & 0xff;
    }

    function expiresAt(uint256 record) internal pure returns (uint256) {
        return (record >> EXPIRY_SHIFT) & EXPIRY_MASK;
    }

    function grantedAt(uint256 record, uint256 purposeIndex) internal pure returns (uint256) {
        return (record >> (GRANTED_SHIFT + 32 * purposeIndex)) & GRANTED_MASK;
    }

    /// @notice The bit offset of a single purpose's grant time in the record, or 0 unless exactly one is set,
    /// so a settlement can check the common single-purpose case with one shift.
    function grantShift(uint256 purposeBits) internal pure returns (uint256) {
        for (uint256 i = 0; i < PURPOSE_COUNT; ++i) {
            if (purposeBits == 1 << i) return GRANTED_SHIFT + 32 * i;
        }
        return 0;
    }

    /// @notice True when every purpose in `required` is granted, was granted at or before `time`, and the record
    /// has not expired at `time`. `required` must be nonzero.
    function covers(uint256 record, uint256 required, uint256 time) internal pure returns (bool) {
        if (record & required != required || time >= expiresAt(record)) return false;
        for (uint256 i = 0; required != 0; ++i) {
            if (required & 1 != 0 && grantedAt(record, i) > time) return false;
            required >>= 1;
        }
        return true;
    }

    /// @notice The record after adding `added` purposes and setting the expiry, at time `now_`.
    /// @dev An expired record starts afresh, so purposes from a lapsed grant do not come back to life.
    function grant(uint256 record, uint256 added, uint256 newExpiry, uint256 now_) internal pure returns (uint256) {
        if (now_ >= expiresAt(record)) record = 0;
        uint256 current = purposes(record);
        uint256 fresh = added & ~current;
        for (uint256 i = 0; i < PURPOSE_COUNT; ++i) {
            if (fresh & (1 << i) != 0) {
                uint256 shift = GRANTED_SHIFT + 32 * i;
                record = (record & ~(GRANTED_MASK << shift)) | (now_ << shift);
            }
        }
        record &= ~(0xff | (EXPIRY_MASK << EXPIRY_SHIFT));
        return record | current | added | (newExpiry << EXPIRY_SHIFT);
    }

    /// @notice The record after withdrawing `removed` purposes (their grant times are cleared too).
    function revoke(uint256 record, uint256 removed) internal pure returns (uint256) {
        for (uint256 i = 0; i < PURPOSE_COUNT; ++i) {
            if (removed & (1 << i) != 0) {
                record &= ~((GRANTED_MASK << (GRANTED_SHIFT + 32 * i)) | (1 << i));
            }
        }
        return record;
    }
}
