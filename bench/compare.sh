#!/usr/bin/env bash
# bench/compare.sh: walkvd against Redis, whole daemon, over loopback.
#
#   bench/compare.sh            full run (about 15 minutes on 2 cores); writes the section
#                               "walkvd against Redis" of docs/benchmarks.md and
#                               bench/set-always-clients.png
#   bench/compare.sh --quick    smoke test (20,000 keys, tiny counts, 1 round, about 2 minutes);
#                               writes only into its output directory
#   options: --reps N (rounds, default 5), --seconds S (target length of one
#            redis-benchmark run, default 2.5), --out DIR (results; default a new
#            /tmp/walkv-compare.XXXXXX), --no-doc (do not touch docs/ or the chart in bench/)
#   ports: WK_PORT (default 7480) for walkvd, RD_PORT (default 7479) for redis-server
#
# What it does, in order (bench/README.md has the why):
#   0. installs redis-server, redis-tools, gnuplot-nox if missing; builds walkvd --release
#   1. preloads KEYS keys `key:%012d` with 100-byte values into a fresh walkvd and a fresh
#      redis-server (fsync "no", automatic snapshots/rewrites off), over one connection with
#      redis-cli --pipe; records VmRSS; stops both. These two directories are templates:
#      every later phase starts from a fresh copy of them.
#   2. restart time, from spawn to the first DBSIZE answering KEYS: log only / command AOF
#      only, then snapshot + short log / RDB-preamble AOF + short AOF
#   3. for fsync always, everysec, no: starts both servers side by side, each on a copy of
#      its template, and runs redis-benchmark on SET and GET, 50 clients, pipeline 1 and 16
#      (and SET with 1, 10, 200 clients under always), walkv and Redis alternating
#   4. SET p99 under fsync always, 50 clients, without and during a BGSAVE (walkv) or a
#      BGREWRITEAOF (Redis)
#   5. bench/report.py aggregates: medians, ratios, goals, the chart
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WK_PORT=${WK_PORT:-7480}
RD_PORT=${RD_PORT:-7479}
QUICK=0 REPS=5 SECONDS_PER_RUN=2.5 OUT="" DOC=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --reps) REPS=$2; shift ;;
        --seconds) SECONDS_PER_RUN=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-doc) DOC=0 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
KEYS=1000000
SHORT_LOG=10000        # SETs written after the snapshot, before the "snapshot + short log" restart
SNAP_RUN_SECONDS=8     # length of each run of phase 4; the snapshot starts 1 s into it
if [ "$QUICK" = 1 ]; then
    KEYS=20000 REPS=1 SHORT_LOG=1000 SNAP_RUN_SECONDS=3 DOC=0
fi
VALUE_BYTES=100
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/walkv-compare.XXXXXX)
mkdir -p "$OUT"
DATA="$OUT/data"             # removed on exit; results stay in $OUT
mkdir -p "$DATA"
T0=$(date +%s)

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ------------------------------------------------------------------ 0. tools, build
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null || need+=(redis-tools)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update && $SUDO apt-get install -y "${need[@]}"
fi
# Debian's redis-server package starts a service on 6379; it is not used here.
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed" >&2; exit 2; }

log "building walkvd (release)"
(cd "$REPO" && cargo build --release --bin walkvd --quiet)
WALKVD="${CARGO_TARGET_DIR:-$REPO/target}/release/walkvd"
[ -x "$WALKVD" ] || { echo "compare.sh: no binary at $WALKVD" >&2; exit 2; }

for p in "$WK_PORT" "$RD_PORT"; do
    if redis-cli -p "$p" PING >/dev/null 2>&1; then
        echo "compare.sh: something already answers on port $p (set WK_PORT / RD_PORT)" >&2
        exit 2
    fi
done

# ------------------------------------------------------------------ servers
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# walkv: automatic snapshots off (0), so the only snapshots are the ones asked for; Redis:
# automatic AOF rewrites off, no RDB save points. Both log every write before answering.
walkv_cmd() { # DIR FSYNC
    echo env WALKV_STORAGE__SNAPSHOT_MIN_LOG_BYTES=0 "$WALKVD" --port "$WK_PORT" --dir "$1" --fsync "$2" --log-level warn
}
redis_cmd() { # DIR FSYNC PREAMBLE(yes|no)
    echo redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$1" --appendonly yes --appendfsync "$2" \
        --save "''" --auto-aof-rewrite-percentage 0 --aof-use-rdb-preamble "$3" --daemonize no --logfile "$1/redis.log"
}
port_of() { [ "$1" = walkv ] && echo "$WK_PORT" || echo "$RD_PORT"; }

# A command line from walkv_cmd/redis_cmd as an array (the only quoted word is --save '').
cmd_array() { # SERVER DIR FSYNC [PREAMBLE]
    local line
    if [ "$1" = walkv ]; then line=$(walkv_cmd "$2" "$3"); else line=$(redis_cmd "$2" "$3" "${4:-no}"); fi
    read -r -a CMD <<<"${line//\'\'/__EMPTY__}"
    local i
    for i in "${!CMD[@]}"; do [ "${CMD[$i]}" = __EMPTY__ ] && CMD[$i]=""; done
    return 0
}

# Starts SERVER on DIR with FSYNC; waits until DBSIZE answers EXPECT (or any number if
# EXPECT is -); sets PID. Timing is phase 2's job, not this one's.
start_server() { # SERVER DIR FSYNC EXPECT [PREAMBLE]
    local server=$1 dir=$2 fsync=$3 expect=$4 port
    port=$(port_of "$server")
    mkdir -p "$dir"
    cmd_array "$server" "$dir" "$fsync" "${5:-no}"
    (cd "$DATA" && exec "${CMD[@]}" >>"$dir.out" 2>&1) &
    PID=$!
    PIDS+=("$PID")
    local n
    for _ in $(seq 1200); do
        n=$(redis-cli -p "$port" DBSIZE 2>/dev/null || true)
        if [[ "$n" =~ ^[0-9]+$ ]] && { [ "$expect" = - ] || [ "$n" = "$expect" ]; }; then return 0; fi
        kill -0 "$PID" 2>/dev/null || { echo "compare.sh: $server exited; see $dir.out" >&2; tail -5 "$dir.out" >&2; exit 1; }
        sleep 0.1
    done
    echo "compare.sh: $server did not answer DBSIZE=$expect within 120 s" >&2
    exit 1
}

stop_server() { # PID: SIGTERM is a clean stop for both (final write + fsync)
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "compare.sh: pid $pid did not stop" >&2; exit 1; }
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

rss() { python3 "$HERE/report.py" rss "$1"; }

# One redis-benchmark run; prints "rps,avg,min,p50,p95,p99,max" (ms).
bench() { # PORT TEST CLIENTS PIPELINE N
    local out
    out=$(redis-benchmark -h 127.0.0.1 -p "$1" -t "${2,,}" -c "$3" -P "$4" -n "$5" -r "$KEYS" -d "$VALUE_BYTES" --csv 2>"$OUT/bench.err") || {
        echo "compare.sh: redis-benchmark failed on port $1" >&2; cat "$OUT/bench.err" >&2; exit 1; }
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    echo "$out" | sed -n 2p | tr -d '"' | cut -d, -f2-
}

# ------------------------------------------------------------------ meta
{
    echo "QUICK=$QUICK"
    echo "KEYS=$KEYS"
    echo "REPS=$REPS"
    echo "STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "LOAD_START=$(uptime | sed 's/.*load average: //') (load average 1, 5, 15 min)"
    echo "COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        echo "DIRTY=; built from the working tree, which had uncommitted changes to $(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no | awk '{printf "%s`%s`", (NR > 1 ? ", " : ""), $2}')"
    fi
    echo "NPROC=$(nproc)"
    echo "CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
    echo "MEM=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "KERNEL=Linux $(uname -r)"
    src=$(findmnt -n -T "$DATA" -o SOURCE,FSTYPE,OPTIONS | tr -s ' ')
    dev=$(basename "$(findmnt -n -T "$DATA" -o SOURCE)")
    echo "DISK=\`$src\`$(lsblk -d -n -o SIZE,ROTA "/dev/$dev" 2>/dev/null | awk '{print ", " $1 ", rotational flag " $2}')"
    echo "DATA=$DATA"
    echo "REDIS_VERSION=$(redis-server --version | cut -d' ' -f1-3)"
    echo "BENCH_VERSION=$(redis-benchmark --version)"
    echo "WALKVD=$WALKVD"
    echo "CMD_WALKV=$(walkv_cmd '$DIR' '$FSYNC')   # \$DIR a fresh copy of the preloaded directory"
    echo "CMD_REDIS=$(redis_cmd '$DIR' '$FSYNC' no)   # yes for the RDB-preamble restart and for phase 4"
    echo "CMD_PRELOAD=python3 bench/report.py preload $KEYS $VALUE_BYTES keys.resp && redis-cli -p \$PORT --pipe < keys.resp   # into each server, fsync no, once"
    echo "CMD_BENCH=redis-benchmark -h 127.0.0.1 -p \$PORT -t SET|GET -c \$CLIENTS -P \$PIPELINE -n \$N -r $KEYS -d $VALUE_BYTES --csv   # \$N from a probe run: about ${SECONDS_PER_RUN} s per run"
    echo "CMD_SNAPSHOT=redis-benchmark -p \$PORT -t SET -c 50 -P 1 -n \$N -r $KEYS -d $VALUE_BYTES --csv & sleep 1; redis-cli -p \$PORT BGSAVE   # BGREWRITEAOF for Redis; \$N for about $SNAP_RUN_SECONDS s"
} >"$OUT/meta.env"
log "results in $OUT; load average $(uptime | sed 's/.*load average: //')"

# ------------------------------------------------------------------ 1. preload templates
log "writing $KEYS SET commands"
python3 "$HERE/report.py" preload "$KEYS" "$VALUE_BYTES" "$OUT/keys.resp"
echo "server,rss_kib" >"$OUT/memory.csv"
for server in walkv redis; do
    log "preloading $server"
    start_server "$server" "$DATA/template-$server" no 0
    redis-cli -p "$(port_of $server)" --pipe <"$OUT/keys.resp" >"$OUT/preload-$server.out"
    n=$(redis-cli -p "$(port_of $server)" DBSIZE)
    [ "$n" = "$KEYS" ] || { echo "compare.sh: $server has $n keys after preload, not $KEYS" >&2; exit 1; }
    sleep 1
    echo "$server,$(rss "$PID")" >>"$OUT/memory.csv"
    stop_server "$PID"
done
rm -f "$OUT/keys.resp"

copy_template() { # SERVER DEST
    rm -rf "$2"
    cp -a "$DATA/template-$1" "$2"
    rm -f "$2/LOCK"
}

# ------------------------------------------------------------------ 2. restart time
echo "case,server,rep,seconds,rss_kib,files" >"$OUT/restart.csv"
timed_restart() { # CASE SERVER DIR PREAMBLE REP
    local case=$1 server=$2 dir=$3 line pid secs
    cmd_array "$server" "$dir" always "$4"
    line=$(cd "$DATA" && python3 "$HERE/report.py" restart "$(port_of "$server")" "$KEYS" "$dir.out" -- "${CMD[@]}")
    pid=${line% *} secs=${line#* }
    PIDS+=("$pid")
    [ "$secs" != FAILED ] || { echo "compare.sh: $server restart failed; see $dir.out" >&2; exit 1; }
    local files
    files=$(du -sh --apparent-size "$dir" | cut -f1)
    echo "$case,$server,$5,$secs,$(rss "$pid"),$files on disk" >>"$OUT/restart.csv"
    log "restart $case $server: $secs s"
    stop_server "$pid"
}
for server in walkv redis; do copy_template "$server" "$DATA/log-$server"; done
for rep in $(seq "$REPS"); do
    for server in walkv redis; do timed_restart log "$server" "$DATA/log-$server" no "$rep"; done
done

# snapshot + short log: walkv SAVE; Redis BGREWRITEAOF with the RDB preamble. Then SHORT_LOG SETs.
for server in walkv redis; do
    dir="$DATA/snap-$server"
    copy_template "$server" "$dir"
    start_server "$server" "$dir" no "$KEYS" yes
    port=$(port_of "$server")
    if [ "$server" = walkv ]; then
        redis-cli -p "$port" SAVE >/dev/null
    else
        redis-cli -p "$port" BGREWRITEAOF >/dev/null
        sleep 0.2
        while redis-cli -p "$port" INFO persistence | grep -qE '^aof_rewrite_(in_progress|scheduled):1'; do sleep 0.1; done
    fi
    redis-benchmark -p "$port" -t set -n "$SHORT_LOG" -c 50 -r "$KEYS" -d "$VALUE_BYTES" -q >/dev/null
    stop_server "$PID"
done
for rep in $(seq "$REPS"); do
    for server in walkv redis; do timed_restart snapshot "$server" "$DATA/snap-$server" yes "$rep"; done
done
rm -rf "$DATA"/log-* "$DATA"/snap-*

# ------------------------------------------------------------------ 3. throughput cells
echo "fsync,test,clients,pipeline,server,rep,n,rps,avg,min,p50,p95,p99,max" >"$OUT/cells.csv"
declare -A NREQ
# Requests per run: QUICK fixed; else a probe of PROBE requests, scaled to SECONDS_PER_RUN.
size_run() { # SERVER TEST CLIENTS PIPELINE -> sets NREQ[key]
    local key="$1/$2/$3/$4" probe rps n
    if [ "$QUICK" = 1 ]; then NREQ[$key]=$((1000 * $4)); return; fi
    probe=$(( ($3 > 100 ? 20 * $3 : 2000) * $4 ))
    rps=$(bench "$(port_of "$1")" "$2" "$3" "$4" "$probe" | cut -d, -f1)
    n=$(python3 -c "print(max($probe, min(5_000_000, int(float('$rps') * $SECONDS_PER_RUN))))")
    NREQ[$key]=$n
}
for fsync in always everysec no; do
    cells=("SET 50 1" "SET 50 16" "GET 50 1" "GET 50 16")
    [ "$fsync" = always ] && cells+=("SET 1 1" "SET 10 1" "SET 200 1")
    declare -A SPID=()
    for server in walkv redis; do
        copy_template "$server" "$DATA/run-$server"
        start_server "$server" "$DATA/run-$server" "$fsync" "$KEYS"
        SPID[$server]=$PID
    done
    log "fsync $fsync: both servers up; sizing runs"
    for cell in "${cells[@]}"; do
        read -r test clients pipeline <<<"$cell"
        for server in walkv redis; do size_run "$server" "$test" "$clients" "$pipeline"; done
    done
    for rep in $(seq "$REPS"); do
        log "fsync $fsync: round $rep of $REPS"
        for cell in "${cells[@]}"; do
            read -r test clients pipeline <<<"$cell"
            for server in walkv redis; do
                n=${NREQ[$server/$test/$clients/$pipeline]}
                r=$(bench "$(port_of "$server")" "$test" "$clients" "$pipeline" "$n")
                echo "$fsync,$test,$clients,$pipeline,$server,$rep,$n,$r" >>"$OUT/cells.csv"
            done
        done
    done
    for server in walkv redis; do stop_server "${SPID[$server]}"; rm -rf "$DATA/run-$server"; done
done

# ------------------------------------------------------------------ 4. latency during a snapshot
echo "server,rep,phase,n,rps,p50,p99,max,snap_seconds,run_seconds" >"$OUT/snapshot.csv"
declare -A SPID=() SNAPN=()
for server in walkv redis; do
    copy_template "$server" "$DATA/snaplat-$server"
    start_server "$server" "$DATA/snaplat-$server" always "$KEYS" yes
    SPID[$server]=$PID
    if [ "$QUICK" = 1 ]; then
        SNAPN[$server]=3000
    else
        rps=$(bench "$(port_of "$server")" SET 50 1 4000 | cut -d, -f1)
        SNAPN[$server]=$(python3 -c "print(int(float('$rps') * $SNAP_RUN_SECONDS))")
    fi
done
snapshot_running() { # SERVER
    if [ "$1" = walkv ]; then
        redis-cli -p "$WK_PORT" INFO persistence | grep -q '^rdb_bgsave_in_progress:1'
    else
        redis-cli -p "$RD_PORT" INFO persistence | grep -qE '^aof_rewrite_(in_progress|scheduled):1'
    fi
}
for rep in $(seq "$REPS"); do
    for server in walkv redis; do
        port=$(port_of "$server") n=${SNAPN[$server]}
        # without a snapshot
        t=$(date +%s.%N)
        r=$(bench "$port" SET 50 1 "$n")
        t=$(python3 -c "import time; print(f'{time.time() - $t:.2f}')")
        IFS=, read -r rps _ _ p50 _ p99 max <<<"$r"
        echo "$server,$rep,base,$n,$rps,$p50,$p99,$max,0,$t" >>"$OUT/snapshot.csv"
        # with one, started 1 s into the run
        t=$(date +%s.%N)
        bench "$port" SET 50 1 "$n" >"$OUT/snap-run.out" &
        bpid=$!
        sleep 1
        s0=$(date +%s.%N)
        if [ "$server" = walkv ]; then redis-cli -p "$port" BGSAVE >/dev/null; else redis-cli -p "$port" BGREWRITEAOF >/dev/null; fi
        sleep 0.05
        while snapshot_running "$server"; do sleep 0.05; done
        s=$(python3 -c "import time; print(f'{time.time() - $s0:.2f}')")
        wait "$bpid"
        t=$(python3 -c "import time; print(f'{time.time() - $t:.2f}')")
        IFS=, read -r rps _ _ p50 _ p99 max <"$OUT/snap-run.out"
        echo "$server,$rep,snap,$n,$rps,$p50,$p99,$max,$s,$t" >>"$OUT/snapshot.csv"
        log "snapshot latency $server round $rep: p99 $p99 ms, snapshot $s s of a $t s run"
    done
done
for server in walkv redis; do stop_server "${SPID[$server]}"; done

# ------------------------------------------------------------------ 5. report
T1=$(date +%s)
{
    echo "ENDED=$(date -u '+%H:%M UTC')"
    echo "RUNTIME=$(( (T1 - T0) / 60 )) min $(( (T1 - T0) % 60 )) s in all"
    echo "LOAD_END=$(uptime | sed 's/.*load average: //')"
} >>"$OUT/meta.env"
args=(report "$OUT" --chart-rel chart.png)
[ "$DOC" = 1 ] && args=(report "$OUT" --doc "$REPO/docs/benchmarks.md" --chart-rel ../bench/set-always-clients.png)
python3 "$HERE/report.py" "${args[@]}"
chart="$OUT/chart.png"
[ "$DOC" = 1 ] && chart="$HERE/set-always-clients.png"
gnuplot <<EOF
set terminal pngcairo size 800,480 font ",11"
set output "$chart"
set title "SET, 100-byte values, fsync always, no pipelining (medians of $REPS rounds)"
set xlabel "clients"
set ylabel "requests per second"
set logscale x
set xtics (1, 10, 50, 200)
set xrange [0.8:300]
set yrange [0:*]
set key top left
set grid ytics
plot "$OUT/chart.dat" using 1:2 with linespoints lw 2 pt 7 title "walkvd", \
     "" using 1:3 with linespoints lw 2 pt 5 title "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
EOF
log "done in $(( (T1 - T0) / 60 )) min $(( (T1 - T0) % 60 )) s; report: $OUT/report.md; chart: $chart"
cat "$OUT/report.md"
