#!/usr/bin/env bash
# Runs `weir perf produce` and librdkafka's `rdkafka_performance` against `weir server`
# on this machine, with the same settings, and prints one line per run: records/s,
# client CPU seconds per million records, and the broker's CPU seconds.
#
# Every run gets a fresh broker and data directory, and (when run as root) a dropped
# page cache: with the cache full of earlier runs, the broker's writes reclaim pages
# and its CPU per run varied by 2x.
#
# Usage: RDKAFKA_PERFORMANCE=/path/to/rdkafka_performance bench/vs-librdkafka.sh [ROUNDS]
# Build rdkafka_performance from a librdkafka checkout:
#   ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd \
#               --disable-lz4-ext --disable-sasl && make libs && make -C examples rdkafka_performance
# Run it on a quiet machine: both clients share the cores with the broker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
rk=${RDKAFKA_PERFORMANCE:?set RDKAFKA_PERFORMANCE to the rdkafka_performance binary}
weir=${WEIR:-$root/target/release/weir}
[ -x "$weir" ] || (cd "$root" && cargo build --release -q -p weir-cli)
dir=${BENCH_DIR:-$root/target/bench}
port=${BENCH_PORT:-39092}
bootstrap=127.0.0.1:$port
server=

stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=
}
trap stop_server EXIT

start_server() {
  stop_server
  rm -rf "$dir"; mkdir -p "$dir"
  sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  "$weir" server --data-dir "$dir/data" --listen "$bootstrap" > "$dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do grep -q "ready on" "$dir/server.log" && break; sleep 0.1; done
  if ! grep -q "ready on" "$dir/server.log"; then
    echo "weir server did not start (is port $port taken? set BENCH_PORT):" >&2
    cat "$dir/server.log" >&2
    exit 1
  fi
  "$weir" topic create t --partitions 1 -b "$bootstrap" > /dev/null
}

# Seconds of CPU the broker has used so far.
server_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$server/stat"; }

# run NAME ACKS SIZE COUNT COMMAND...
run() {
  local name=$1 acks=$2 size=$3 n=$4; shift 4
  start_server
  local before out after rate cpu p50
  before=$(server_cpu)
  out=$( { /usr/bin/time -f "client_cpu %U %S" "$@"; } 2>&1 )
  after=$(server_cpu)
  rate=$(grep -o '"records_per_sec":[0-9]*' <<< "$out" | cut -d: -f2 || true)
  [ -n "$rate" ] || rate=$(grep -o '[0-9]* msgs/s' <<< "$out" | tail -1 | cut -d' ' -f1)
  cpu=$(awk -v n="$n" '/^client_cpu/ { printf "%.3f", ($2 + $3) * 1e6 / n }' <<< "$out")
  p50=$(grep -o '"p50":[0-9.]*' <<< "$out" | cut -d: -f2 || true)
  echo "$name acks=$acks size=$size records=$n records/s=$rate client_cpu_s_per_M=$cpu" \
    "server_cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')${p50:+ p50_ms=$p50}"
}

for _ in $(seq 1 "$rounds"); do
  for size in 100 1024; do
    n=$([ "$size" = 100 ] && echo 3000000 || echo 1000000)
    common=(-X batch.size=16384 -X linger.ms=5)
    perf=("$weir" perf produce -b "$bootstrap" -t t -s "$size" --batch-size 16384 --linger-ms 5 --json)
    # acks=1, not idempotent: each client's default window, then both at 5.
    run weir-inflight5 1 "$size" "$n" "${perf[@]}" -n "$n" --acks 1
    run rdkafka-inflight1000000 1 "$size" "$n" "$rk" -P -t t -b "$bootstrap" -s "$size" -c "$n" \
      "${common[@]}" -X acks=1 -X enable.idempotence=false
    run weir-inflight1000 1 "$size" "$n" "${perf[@]}" -n "$n" --acks 1 --max-in-flight 1000
    run rdkafka-inflight5 1 "$size" "$n" "$rk" -P -t t -b "$bootstrap" -s "$size" -c "$n" \
      "${common[@]}" -X acks=1 -X enable.idempotence=false -X max.in.flight=5
    # acks=all, idempotent (5 in flight) on both.
    half=$((n / 2))
    run weir-idempotent all "$size" "$half" "${perf[@]}" -n "$half" --acks all
    run rdkafka-idempotent all "$size" "$half" "$rk" -P -t t -b "$bootstrap" -s "$size" -c "$half" \
      "${common[@]}" -X acks=all -X enable.idempotence=true
  done
done
