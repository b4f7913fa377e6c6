// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Consumer consent to brands, per purpose, with expiry
/// @notice A consumer's consent to one brand is one record: a set of purposes, the time each purpose was
/// granted, and one expiry for the record. Grants add purposes and renew the expiry; revocations take effect
/// at once. Consent can be given directly or by an EIP-712 signature that anyone relays (gasless).
/// @dev The record is one storage word so that a settlement reads it once per consumer:
///   bits   0..7    purposes bitmask (PURPOSE_* below)
///   bits   8..47   expiresAt, unix seconds (uint40): the record is active while block.timestamp < expiresAt
///   bits  64..255  six uint32 "granted since" times, purpose i at bit 64 + 32*i (uint32 seconds reach 2106)
/// @dev Warning: a purpose revoked and granted again counts from the new grant: engagements that happened under
/// the earlier grant no longer qualify. Revocation is meant to be conservative.
/// @dev Warning: the chain holds addresses and bitmasks only; what a purpose means for a brand's data handling is
/// agreed off chain, in the brand's privacy terms.
interface IConsentRegistry {
    /* ERRORS */

    /// @notice The purposes bitmask is empty or has bits beyond the six defined purposes.
    error ConsentInvalidPurposes(uint256 purposes);
    /// @notice The expiry is not in the future, or does not fit the record (uint40, and uint32 grant times).
    error ConsentInvalidExpiry(uint256 expiresAt, uint256 now_);
    /// @notice A brand must be a nonzero address.
    error ConsentInvalidBrand(address brand);
    /// @notice The relayed signature's deadline has passed.
    error ConsentExpiredSignature(uint256 deadline);
    /// @notice The relayed signature was not made by the consumer (or the consumer's ERC-1271 wallet refused it).
    error ConsentInvalidSigner(address consumer);

    /* EVENTS */

    /// @notice `purposes` were added to the consumer's consent to `brand`; the record now holds `allPurposes`
    /// and expires at `expiresAt`.
    event ConsentGranted(
        address indexed consumer, address indexed brand, uint256 purposes, uint256 allPurposes, uint256 expiresAt
    );
    /// @notice `purposes` were withdrawn from the consumer's consent to `brand`; `allPurposes` remain.
    event ConsentRevoked(address indexed consumer, address indexed brand, uint256 purposes, uint256 allPurposes);

    /* GRANT AND REVOKE */

    /// @notice Adds `purposes` to the caller's consent to `brand` and sets the record's expiry.
    /// @dev A purpose already active keeps its original grant time; a new one, or any after expiry, starts now.
    function grant(address brand, uint256 purposes, uint256 expiresAt) external;

    /// @notice Withdraws `purposes` from the caller's consent to `brand`, effective immediately.
    function revoke(address brand, uint256 purposes) external;

    /// @notice `grant` on behalf of `consumer`, authorised by their EIP-712 `Grant` signature.
    function grantBySig(
        address consumer,
        address brand,
        uint256 purposes,
        uint256 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice `revoke` on behalf of `consumer`, authorised by their EIP-712 `Revoke` signature.
    function revokeBySig(
        address consumer,
        address brand,
        uint256 purposes,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /* VIEWS */

    /// @notice True when every purpose in `purposes` was granted at or before `time` and the record is active at `time`.
    function hasConsent(address consumer, address brand, uint256 purposes, uint256 time) external view returns (bool);

    /// @notice The packed record (layout above): one storage read, for settlement.
    function consentRecord(address consumer, address brand) external view returns (uint256);

    /// @notice The record unpacked: purposes, expiry, and the grant time of each of the six purposes.
    function consentOf(address consumer, address brand)
        external
        view
        returns (uint256 purposes, uint256 expiresAt, uint256[6] memory grantedAt);
}
