// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {ConsentRecord} from "./libraries/ConsentRecord.sol";

/// @title ConsentRegistry
/// @notice Consumers' consent to brands, per purpose, granted directly or by relayed EIP-712 signature.
contract ConsentRegistry is IConsentRegistry, EIP712, Nonces {
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address consumer,address brand,uint256 purposes,uint256 expiresAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address consumer,address brand,uint256 purposes,uint256 nonce,uint256 deadline)");

    mapping(address consumer => mapping(address brand => uint256 record)) private _records;

    constructor() EIP712("adledger ConsentRegistry", "1") {}

    /* GRANT AND REVOKE */

    /// @inheritdoc IConsentRegistry
    function grant(address brand, uint256 purposes, uint256 expiresAt) external {
        _grant(msg.sender, brand, purposes, expiresAt);
    }

    /// @inheritdoc IConsentRegistry
    function revoke(address brand, uint256 purposes) external {
        _revoke(msg.sender, brand, purposes);
    }

    /// @inheritdoc IConsentRegistry
    function grantBySig(
        address consumer,
        address brand,
        uint256 purposes,
        uint256 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(GRANT_TYPEHASH, consumer, brand, purposes, expiresAt, _useNonce(consumer), deadline)
        );
        _checkSignature(consumer, structHash, deadline, signature);
        _grant(consumer, brand, purposes, expiresAt);
    }

    /// @inheritdoc IConsentRegistry
    function revokeBySig(
        address consumer,
        address brand,
        uint256 purposes,
        uint256 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash =
            keccak256(abi.encode(REVOKE_TYPEHASH, consumer, brand, purposes, _useNonce(consumer), deadline));
        _checkSignature(consumer, structHash, deadline, signature);
        _revoke(consumer, brand, purposes);
    }

    /* VIEWS */

    /// @inheritdoc IConsentRegistry
    function hasConsent(address consumer, address brand, uint256 purposes, uint256 time) external view returns (bool) {
        if (purposes == 0) return false;
        return ConsentRecord.covers(_records[consumer][brand], purposes, time);
    }

    /// @inheritdoc IConsentRegistry
    function consentRecord(address consumer, address brand) external view returns (uint256) {
        return _records[consumer][brand];
    }

    /// @inheritdoc IConsentRegistry
    function consentOf(address consumer, address brand)
        external
        view
        returns (uint256 purposes, uint256 expiresAt, uint256[6] memory grantedAt)
    {
        uint256 record = _records[consumer][brand];
        purposes = ConsentRecord.purposes(record);
        expiresAt = ConsentRecord.expiresAt(record);
        for (uint256 i = 0; i < ConsentRecord.PURPOSE_COUNT; ++i) {
            grantedAt[i] = ConsentRecord.grantedAt(record, i);
        }
    }

    /// @notice The EIP-712 domain separator of this registry (chain id and address bound).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /* INTERNALS */

    function _grant(address consumer, address brand, uint256 purposes, uint256 expiresAt) private {
        if (brand == address(0)) revert ConsentInvalidBrand(brand);
        if (purposes == 0 || purposes & ~ConsentRecord.ALL_PURPOSES != 0) revert ConsentInvalidPurposes(purposes);
        // grant times are stored as uint32, so the record must also end before 2106
        if (expiresAt <= block.timestamp || expiresAt > type(uint32).max) {
            revert ConsentInvalidExpiry(expiresAt, block.timestamp);
        }
        uint256 record = _records[consumer][brand];
        uint256 all = ConsentRecord.grant(record, purposes, expiresAt, block.timestamp);
        _records[consumer][brand] = all;
        emit ConsentGranted(consumer, brand, purposes, ConsentRecord.purposes(all), expiresAt);
    }

    function _revoke(address consumer, address brand, uint256 purposes) private {
        if (purposes == 0 || purposes & ~ConsentRecord.ALL_PURPOSES != 0) revert ConsentInvalidPurposes(purposes);
        uint256 record = ConsentRecord.revoke(_records[consumer][brand], purposes);
        _records[consumer][brand] = record;
        emit ConsentRevoked(consumer, brand, purposes, ConsentRecord.purposes(record));
    }

    function _checkSignature(address consumer, bytes32 structHash, uint256 deadline, bytes calldata signature)
        private
        view
    {
        if (block.timestamp > deadline) revert ConsentExpiredSignature(deadline);
        if (!SignatureChecker.isValidSignatureNow(consumer, _hashTypedDataV4(structHash), signature)) {
            revert ConsentInvalidSigner(consumer);
        }
    }
}
