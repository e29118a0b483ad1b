#!/usr/bin/env bash
# Download (once), start, stop and query a local Elasticsearch server for development and tests.
#
#   scripts/es.sh start    fetch the pinned integ-test-zip with mvn into the cache, start on 127.0.0.1, wait
#   scripts/es.sh stop     stop the server started by `start` (by its pid file)
#   scripts/es.sh status   print whether it answers
#   scripts/es.sh run CMD  start, run CMD, stop afterwards (also when CMD fails); exit with CMD's status
#
# Settings (environment): CXRSEARCH_CACHE (default .cache), CXRSEARCH_ES_VERSION, CXRSEARCH_ES_PORT,
# CXRSEARCH_ES_HEAP, ES_JAVA_HOME. Elasticsearch 8.x runs on Java 17, which this machine has.
# Elasticsearch refuses to run as root: when started by root, it runs as the system user `cxrsearch-es`,
# created on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${CXRSEARCH_CACHE:-$ROOT/.cache}"
VERSION="${CXRSEARCH_ES_VERSION:-8.19.21}"
PORT="${CXRSEARCH_ES_PORT:-9200}"
HEAP="${CXRSEARCH_ES_HEAP:-512m}"
ES_USER="cxrsearch-es"
ES_DIR="$CACHE/elasticsearch"
HOME_DIR="$ES_DIR/elasticsearch-$VERSION"
RUN_DIR="$ES_DIR/run-$PORT"
PID_FILE="$RUN_DIR/es.pid"
URL="http://127.0.0.1:$PORT"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip"

log() { echo "[es] $*" >&2; }

find_java() {
    if [ -n "${ES_JAVA_HOME:-}" ]; then echo "$ES_JAVA_HOME"; return; fi
    for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* /usr/lib/jvm/temurin-2*; do
        if [ -x "$j/bin/java" ]; then echo "$j"; return; fi
    done
    if command -v java >/dev/null; then dirname "$(dirname "$(readlink -f "$(command -v java)")")"; return; fi
    log "no Java found: install OpenJDK 17 or set ES_JAVA_HOME"; exit 1
}

answers() { curl -fsS --max-time 2 "$URL/_cluster/health" >/dev/null 2>&1; }

fetch() {
    [ -x "$HOME_DIR/bin/elasticsearch" ] && return
    mkdir -p "$ES_DIR"
    local zip="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$VERSION/elasticsearch-$VERSION.zip"
    if [ ! -f "$zip" ]; then
        log "downloading $ARTIFACT from Maven Central (once)"
        mvn -q -B dependency:get -Dartifact="$ARTIFACT" -Dtransitive=false >&2
    fi
    local sha1_file="$zip.sha1"
    if [ -f "$sha1_file" ]; then
        local want got
        want="$(cut -c1-40 "$sha1_file")"
        got="$(sha1sum "$zip" | cut -c1-40)"
        if [ "$want" != "$got" ]; then log "checksum mismatch for $zip ($got != $want); delete it and retry"; exit 1; fi
    fi
    log "unpacking Elasticsearch $VERSION into $ES_DIR"
    rm -rf "$HOME_DIR.tmp" && mkdir -p "$HOME_DIR.tmp"
    (cd "$HOME_DIR.tmp" && unzip -q "$zip")
    mv "$HOME_DIR.tmp/elasticsearch-$VERSION" "$HOME_DIR" && rm -rf "$HOME_DIR.tmp"
}

start() {
    if answers; then log "already running at $URL"; return; fi
    fetch
    local java; java="$(find_java)"
    mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs"
    local runas=()
    if [ "$(id -u)" = 0 ]; then
        id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
        chown -R "$ES_USER" "$HOME_DIR" "$RUN_DIR"
        # the user must be able to walk down to the cache directory
        local d="$ES_DIR"; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
        runas=(runuser -u "$ES_USER" --)
    fi
    log "starting Elasticsearch $VERSION on $URL (heap $HEAP, Java $java)"
    rm -f "$PID_FILE"
    "${runas[@]}" env ES_JAVA_HOME="$java" ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP" \
        "$HOME_DIR/bin/elasticsearch" -d -p "$PID_FILE" \
        -E cluster.name=cxrsearch-dev -E node.name=cxrsearch-dev \
        -E http.host=127.0.0.1 -E transport.host=127.0.0.1 -E http.port="$PORT" \
        -E discovery.type=single-node -E xpack.security.enabled=false \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        -E path.data="$RUN_DIR/data" -E path.logs="$RUN_DIR/logs" >"$RUN_DIR/start.log" 2>&1 || {
        log "Elasticsearch failed to start; last lines of $RUN_DIR/start.log:"; tail -20 "$RUN_DIR/start.log" >&2; exit 1; }
    for _ in $(seq 1 120); do
        if answers; then log "ready at $URL (pid $(cat "$PID_FILE" 2>/dev/null))"; return; fi
        sleep 1
    done
    log "Elasticsearch did not answer at $URL within 120 s; see $RUN_DIR/logs"; stop; exit 1
}

stop() {
    if [ ! -f "$PID_FILE" ]; then log "not running (no pid file $PID_FILE)"; return; fi
    local pid; pid="$(cat "$PID_FILE")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -9 "$pid" 2>/dev/null || true
        log "stopped (pid $pid)"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if answers; then echo "running at $URL"; else echo "not running at $URL"; exit 1; fi ;;
    run)
        shift
        if answers; then
            log "using the server already running at $URL (left running afterwards)"
        else
            start
            trap stop EXIT
        fi
        set +e
        CXRSEARCH_ES_URL="$URL" "$@"
        rc=$?
        exit $rc
        ;;
    *) echo "usage: $0 start|stop|status|run CMD..." >&2; exit 2 ;;
esac
