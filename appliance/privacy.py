"""Student privacy: pseudonyms, and what free text may leave the box.

A student is known by class code + nickname on the tablet. Records hold only
HMAC-SHA256(secret, class + nickname), truncated: stable (so a student's answers
can be followed over time), meaningless without the secret, which never leaves
the box. The secret is generated at provisioning, or given to every box of a
school (``--school-secret``) so that one student has one pseudonym school-wide.

Before records leave the box, :func:`prepare_for_export` drops the records of
students who opted out and scrubs emails, phone numbers and known nicknames
from their free text.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Iterable

from .errors import ConfigError
from .fsutil import atomic_write_bytes

SECRET_FILE = "pseudonym.key"


def normalise_name(name: str) -> str:
    """So 'Ana ', 'ana' and 'ＡＮＡ' are one student."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def pseudonym(secret: bytes, class_id: str, nickname: str) -> str:
    message = f"{normalise_name(class_id)}\x00{normalise_name(nickname)}".encode("utf-8")
    return "s-" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:24]


def ensure_secret(secrets_dir: Path, given: bytes | None = None) -> bytes:
    """Create the pseudonym secret once (``given``: the school's); later calls keep it."""
    path = Path(secrets_dir) / SECRET_FILE
    if given is not None and len(given) != 32:
        raise ConfigError("a school secret must be 32 bytes (64 hex digits)",
                          hint="make one with: python3 -c 'import secrets; print(secrets.token_hex(32))'")
    if path.exists():
        if given is not None and load_secret(secrets_dir) != given:
            raise ConfigError(f"{path} already holds a different secret",
                              hint="changing it would split every student's history; "
                                   "deprovision the box first if that is really meant")
    else:
        Path(secrets_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(path, given or secrets.token_bytes(32), mode=0o600)
    return load_secret(secrets_dir)


def load_secret(secrets_dir: Path) -> bytes:
    path = Path(secrets_dir) / SECRET_FILE
    try:
        secret = path.read_bytes()
    except OSError:
        raise ConfigError(f"the pseudonym secret {path} is missing",
                          hint="run 'chalkbox box provision' on this data dir")
    if len(secret) != 32:
        raise ConfigError(f"the pseudonym secret {path} is damaged",
                          hint="restore it from backup; a new one would split every student's history")
    return secret


EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# 7+ digits, optionally with +, spaces, dots, dashes or brackets between them
PHONE_RE = re.compile(r"(?<![\w])\+?\d(?:[\s().-]*\d){6,}(?![\w])")


def names_pattern(names: Iterable[str]) -> re.Pattern | None:
    """One regex for all known names (whole words, any case): one pass per text."""
    unique = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)
    if not unique:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, unique)) + r")(?!\w)",
                      re.IGNORECASE)


_HAS_DIGITS = re.compile(r"\d(?:\D*\d){6}").search  # cheap pre-check: 7+ digits somewhere


def scrub_text(text: str, names: Iterable[str] | re.Pattern | None = ()) -> str:
    """Free text with emails, phone numbers and the given names replaced by tags."""
    if "@" in text:
        text = EMAIL_RE.sub("[email]", text)
    if _HAS_DIGITS(text):
        text = PHONE_RE.sub("[phone]", text)
    pattern = names if isinstance(names, re.Pattern) or names is None else names_pattern(names)
    return pattern.sub("[name]", text) if pattern is not None else text


def prepare_for_export(records, opted_out: set[str], names: Iterable[str]):
    """What may leave the box: opted-out students' records dropped, free text scrubbed."""
    pattern = names_pattern(names)
    scrubbed: dict[str, str] = {}  # questions and references repeat for every answer
    out = []
    for record in records:
        if record.student and record.student in opted_out:
            continue
        texts = {}
        for key, val in record.texts.items():
            if val not in scrubbed:
                scrubbed[val] = scrub_text(val, pattern)
            texts[key] = scrubbed[val]
        out.append(dataclasses.replace(record, texts=texts) if texts != record.texts else record)
    return out


# A name a student gives about themselves ("my name is Ana Lima"), for text from sources
# without a roster (teacher files, datasets at the centre). The phrase is matched in any
# case, the name only when capitalised (checked in code: ``re`` has no uppercase class),
# so "my name is on the paper" is left alone.
SELF_NAMED_RE = re.compile(r"(?<!\w)((?:my\s+name\s+is|my\s+name's|i\s+am\s+called|"
                           r"i'm\s+called|call\s+me)\s+)([^\W\d_][\w'-]*)(\s+[^\W\d_][\w'-]*)?",
                           re.IGNORECASE)


def _name_tag(match: re.Match) -> str:
    intro, first, second = match.group(1), match.group(2), match.group(3) or ""
    if not first[0].isupper():
        return match.group(0)
    # a capitalised second word is the surname; anything else is the sentence going on
    return intro + "[name]" + (second if second and not second.strip()[0].isupper() else "")


def scrub_self_named(text: str) -> str:
    """Names a text introduces ("my name is Ana", "call me Ben Ng") replaced by ``[name]``."""
    low = text.lower()
    if "name" not in low and "call" not in low:  # cheap pre-check: most answers have neither
        return text
    return SELF_NAMED_RE.sub(_name_tag, text)
