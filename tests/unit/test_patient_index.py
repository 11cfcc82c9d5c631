"""The blind patient index's pure rules: normalising, hashing, probes; shown ids."""

from __future__ import annotations

from cryptography.fernet import Fernet

from telemed.foundation.cipher import Cipher
from telemed.foundation.shown_ids import key_of, own_text, principal_label
from telemed.store import patient_index as pi

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_names_fold_case_and_accents_into_words() -> None:
    assert pi.name_tokens("  Émile   ZOLA-Dupont ") == ["emile", "zola", "dupont"]
    assert pi.name_tokens("Ada Ada ada") == ["ada"]
    assert pi.name_tokens("!!! ---") == []
    assert pi.normalise_email(" Grace@Example.ORG ") == "grace@example.org"


def test_the_value_holds_the_key_tag_and_one_hash_per_part() -> None:
    keys = pi.index_keys(Cipher([NEW, OLD]))
    value = pi.index_value(keys, "Grace Brewster Hopper", "grace@example.org")
    tag, *terms = value.split()
    assert tag == f"k:{pi.key_tag(keys[0])}" and len(terms) == 4 and value.endswith(" ")
    assert all(len(t) == pi.HASH_CHARS for t in terms)
    assert "grace" not in value.lower() and "example" not in value  # nothing readable
    # The same patient (any case, spacing or word order) gives the same hashes; another key, others.
    assert set(pi.index_value(keys, "grace  HOPPER brewster", " GRACE@example.org").split()) == set(value.split())
    assert set(pi.index_value(pi.index_keys(Cipher([OLD])), "Grace Brewster Hopper", "grace@example.org").split()) \
        .isdisjoint(terms)


def test_probes_match_the_value_under_each_configured_key() -> None:
    old_keys = pi.index_keys(Cipher([OLD]))
    written = pi.index_value(old_keys, "Émile Zola", "emile@example.org")
    probes = pi.probes(pi.index_keys(Cipher([NEW, OLD])), "zola EMILE")
    assert len(probes) == 2

    def matches(probe: pi.Probe) -> bool:
        return written.startswith(probe.tag_pattern[:-1]) and all(f" {t} " in written for t in probe.terms)

    assert [matches(p) for p in probes] == [False, True]  # written under the old key: found by its probe
    [email_probe] = pi.probes(old_keys, "EMILE@example.org ")
    assert matches(email_probe)
    assert not any(matches(p) for p in pi.probes(old_keys, "emil"))  # a whole word only
    assert pi.probes(old_keys, "   ") == []


def test_derived_keys_are_not_the_fernet_keys_and_follow_the_order() -> None:
    cipher = Cipher([NEW, OLD])
    derived = cipher.derived_keys(pi.PURPOSE)
    assert len(derived) == 2 and derived[1] == Cipher([OLD]).derived_keys(pi.PURPOSE)[0]
    assert derived != cipher.derived_keys("another purpose")


def test_what_a_clinic_is_shown_and_may_ask_for() -> None:
    assert own_text("gave up on b/A-1 and b/A-2", "b") == "gave up on A-1 and A-2"
    assert own_text("gave up on A-1", "default") == "gave up on A-1"
    assert principal_label("doctor:b/D-1") == "doctor:D-1"
    assert principal_label("doctor:D-1 key:abc") == "doctor:D-1 key:abc"
    assert principal_label("admin key:abc") == "admin key:abc"
    assert key_of("b", "A-1") == "b/A-1" and key_of("default", "A-1") == "A-1"
    assert key_of("default", "b/A-1") is None and key_of("b", "") is None and key_of("b", "x" * 129) is None


def test_the_access_log_never_holds_a_search() -> None:
    from telemed.foundation.redaction import mask_request_target

    # The page links carry a handle, never the patient; the log masks even the handle.
    assert mask_request_target("/admin/appointments?when=all&page=2&search=Zq3x") == "/admin/appointments?[REDACTED]"
    assert mask_request_target("/admin/appointments?patient=grace") == "/admin/appointments?[REDACTED]"
