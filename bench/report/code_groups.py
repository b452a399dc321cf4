"""What a function of ingest or the limit handler is doing, by its name: the groups that
bench/report/callgrind_groups.py (instructions) and bench/report/load_profile.py (perf samples
under load) both report."""
import re

# First match wins: the more specific crates before the ones they are built on.
GROUPS = [
    ("kernel (network, scheduling, syscalls)", r"\[kernel"),
    ("request body (serde_json, serde_path_to_error)", r"serde_json|serde_path_to_error|serde::de|serde_core"),
    ("metrics (prometheus)", r"prometheus"),
    ("caches (quick_cache, moka)", r"quick_cache|moka|crossbeam|quanta|tagptr"),
    ("tracing", r"tracing"),
    ("request id, trace and panic layers (tower-http)", r"tower_http"),
    ("router and middleware (axum, tower)", r"axum|tower::|tower_service|matchit"),
    ("HTTP/1 (hyper, http)", r"hyper|http::|httparse|h2::"),
    ("rate limiter (governor)", r"governor"),
    ("ids and clocks (uuid, chrono, rand, clock reads)", r"uuid|chrono|rand|getrandom|clock_gettime|vdso|Timespec|Instant"),
    ("hashing (SipHash, ahash, foldhash)", r"sip|hash::|ahash|foldhash|hashbrown"),
    ("our code (linktrace)", r"linktrace"),
    ("producer (rdkafka)", r"rdkafka|rd_kafka|\brd_|KafkaSink"),
    ("runtime (tokio, futures)", r"tokio|futures|mio"),
    ("allocator (mimalloc)", r"mi_|_mi_|mimalloc|__rust_alloc|__rust_dealloc|__rust_realloc|alloc::"),
    ("memcpy and friends", r"memmove|memcpy|memset|memcmp|strlen"),
    ("C library", r"libc|ld-linux|pthread|__GI_|__libc"),
]


def group_of(name):
    """The first group whose pattern `name` (a symbol, or callgrind's "file:function") matches."""
    return next((group for group, pattern in GROUPS if re.search(pattern, name)), "other")
