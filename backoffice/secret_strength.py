"""How guessable a production secret key is (``PAYGO_SECRET_KEY``): structural checks for the usual
mistakes and zxcvbn's estimate of the guesses it takes."""

from __future__ import annotations

import math
import re
from collections import Counter

from zxcvbn import zxcvbn

DEV_SECRET_KEY = "development-only-key-change-me-in-production"

MIN_SECRET_KEY_BITS = 128
# zxcvbn's estimate of the guesses a key takes, as a power of ten: 10^30 is about 2^100. A generated key
# (secrets.token_urlsafe(32): about 10^43, or token_hex(32)) passes; 32 hex characters may not.
MIN_SECRET_KEY_GUESSES_LOG10 = 30
_PLACEHOLDERS = ("change-me", "changeme", "change_me", DEV_SECRET_KEY)


def weak_secret_key(key: str) -> str | None:
    """Why ``key`` is too weak for production, or None. An estimate that keeps out the usual mistakes,
    not a proof of randomness: at least 32 characters; no placeholder (the development key,
    "change-me"); no repeated pattern; at least 2.5 bits per character by the frequencies of its
    own characters; not words only (a passphrase has far fewer bits than characters); and at least
    128 bits as length x log2(alphabet), the alphabet being digits (10), hex (16) or the classes
    it uses (26 lower, 26 upper, 10 digits, 33 others); and at least 10^30 guesses by zxcvbn's estimate
    (keyboard walks, sequences, words, dates). A ``secrets.token_urlsafe(32)`` passes."""
    n = len(key)
    if n < 32:
        return f"{n} characters, fewer than 32"
    if any(p in key.lower() for p in _PLACEHOLDERS):
        return "it contains a placeholder (the development key or 'change-me')"
    if any(key[p:] == key[:-p] for p in range(1, n // 2 + 1)):
        return "it repeats a shorter pattern"
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(key).values())
    if per_char < 2.5:
        return f"its characters repeat too much ({per_char:.1f} bits per character)"
    if _words_only(key):
        return "it is made of words only"
    if key.isdigit():
        alphabet = 10
    elif re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", key):
        alphabet = 16
    else:
        classes = ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10))
        alphabet = sum(size for test, size in classes if any(test(c) for c in key))
        alphabet += 33 if any(not c.isalnum() for c in key) else 0
    bits = n * math.log2(alphabet)
    if bits < MIN_SECRET_KEY_BITS:
        return f"about {bits:.0f} bits ({n} characters of an alphabet of {alphabet}), under {MIN_SECRET_KEY_BITS}"
    # Keyboard walks, sequences, dictionary words and dates count for little (issue 22 finding 7:
    # "qwertyuiopasdfghjklzxcvbnm123456" and "correct-horse-battery-staple-2024" passed the checks above).
    estimate = zxcvbn(key[:100])  # its matching grows fast with length; 100 characters are plenty to judge
    guesses = float(estimate["guesses_log10"])
    if guesses < MIN_SECRET_KEY_GUESSES_LOG10:
        warning = (estimate["feedback"]["warning"] or "it follows a guessable pattern").rstrip(".").lower()
        floor = MIN_SECRET_KEY_GUESSES_LOG10
        return f"zxcvbn estimates it falls in about 10^{guesses:.0f} guesses (under 10^{floor}): {warning}"
    return None


def _words_only(key: str) -> bool:
    """Letters and separators only, every word (lower, Capitalised or UPPER case) of 3 letters or more."""
    if any(c.isdigit() for c in key):
        return False
    words = [w for run in re.findall(r"[A-Za-z]+", key) for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", run)]
    return bool(words) and all(len(w) >= 3 for w in words)
