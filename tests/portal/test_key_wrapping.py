"""Data keys wrapped under a key-encryption key: bound to their key ID and object, never moved."""

from __future__ import annotations

import pytest

from portal.vault.crypto import VaultIntegrityError, new_data_key, unwrap_key, wrap_key


class TestKeyWrapping:
    def test_it_round_trips(self) -> None:
        kek, dek = new_data_key(), new_data_key()
        wrapped = wrap_key(kek, "k1", "obj-1", dek)
        assert len(wrapped) == 12 + 32 + 16
        assert dek not in wrapped
        assert unwrap_key(kek, "k1", "obj-1", wrapped) == dek

    def test_it_uses_a_fresh_nonce(self) -> None:
        kek, dek = new_data_key(), new_data_key()
        assert wrap_key(kek, "k1", "o", dek) != wrap_key(kek, "k1", "o", dek)

    @pytest.mark.parametrize(
        "kek_other, key_id, object_id",
        [(False, "k1", "obj-2"), (False, "k2", "obj-1"), (True, "k1", "obj-1")],
    )
    def test_it_rejects_a_moved_key(self, kek_other: bool, key_id: str, object_id: str) -> None:
        kek = new_data_key()
        wrapped = wrap_key(kek, "k1", "obj-1", new_data_key())
        with pytest.raises(VaultIntegrityError):
            unwrap_key(new_data_key() if kek_other else kek, key_id, object_id, wrapped)

    def test_it_rejects_a_flipped_bit_and_wrong_length(self) -> None:
        kek = new_data_key()
        wrapped = bytearray(wrap_key(kek, "k1", "o", new_data_key()))
        wrapped[20] ^= 1
        with pytest.raises(VaultIntegrityError):
            unwrap_key(kek, "k1", "o", bytes(wrapped))
        with pytest.raises(VaultIntegrityError):
            unwrap_key(kek, "k1", "o", bytes(wrapped[:-1]))

    def test_it_refuses_ambiguous_key_ids(self) -> None:
        with pytest.raises(ValueError):
            wrap_key(new_data_key(), "k1|x", "o", new_data_key())
