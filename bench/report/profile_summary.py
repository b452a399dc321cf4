"""bench/profile.sh: instructions per request of the bare handler and of ingest, and the
difference (the callgrind totals as `NAME TOTAL`).

Usage: bench/report profile-summary "bare TOTAL" "ingest TOTAL" REQUESTS"""
import sys
bare, ingest, n = int(sys.argv[1].split()[1]), int(sys.argv[2].split()[1]), int(sys.argv[3])
print(f"bare-produce: {bare / n:,.0f} instructions/request")
print(f"ingest:       {ingest / n:,.0f} instructions/request ({ingest / bare:.2f}x)")
print(f"above the limit: {(ingest - bare) / n:,.0f} instructions/request")
