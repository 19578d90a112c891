#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, combined broker + controller) for tests and
# local runs on machines without Docker. Needs Java 17+ and Maven (only for `fetch`).
#
#   broker/kafka.sh fetch    download the Kafka jars (once per pom.xml change)
#   broker/kafka.sh start    fetch if needed, format storage if needed, start, wait until ready
#   broker/kafka.sh stop     stop the broker (SIGTERM, SIGKILL after the deadline)
#   broker/kafka.sh status   exit 0 when running, 1 when not
#   broker/kafka.sh wipe     stop and delete the broker's data
#
# Environment (defaults in brackets):
#   BROKER_HOME               state directory [<repo>/.broker]
#   KAFKA_LIBS_DIR            jar cache [$BROKER_HOME/libs]
#   KAFKA_PORT                client listener on 127.0.0.1 [9092]
#   CONTROLLER_PORT           KRaft controller listener on 127.0.0.1 [9093]
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable [false]
#   KAFKA_FRESH               1 = delete the data directory before starting [0]
#   KAFKA_START_TIMEOUT       seconds to wait for the broker to answer [90]
#   KAFKA_STOP_TIMEOUT        seconds to wait for a clean shutdown before SIGKILL [30]
#   KAFKA_HEAP_OPTS           [-Xmx512m -Xms256m]
#   KAFKA_OWNER_PID           stop the broker when this process exits (used by the tests)
#   JAVA, MVN                 commands to use [java, mvn]
#
# Everything that belongs to one broker is named after its client port, so brokers on
# different ports can share one BROKER_HOME.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
pom=$here/pom.xml
kafka_version=3.9.2

BROKER_HOME=${BROKER_HOME:-$repo/.broker}
KAFKA_LIBS_DIR=${KAFKA_LIBS_DIR:-$BROKER_HOME/libs}
KAFKA_PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${CONTROLLER_PORT:-9093}
KAFKA_AUTO_CREATE_TOPICS=${KAFKA_AUTO_CREATE_TOPICS:-false}
KAFKA_FRESH=${KAFKA_FRESH:-0}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}

data_dir=$BROKER_HOME/data-$KAFKA_PORT
props=$BROKER_HOME/server-$KAFKA_PORT.properties
log4j_props=$BROKER_HOME/log4j-$KAFKA_PORT.properties
log_file=$BROKER_HOME/kafka-$KAFKA_PORT.log
out_file=$BROKER_HOME/kafka-$KAFKA_PORT.out
pid_file=$BROKER_HOME/kafka-$KAFKA_PORT.pid
marker=$KAFKA_LIBS_DIR/.fetched

say() { echo "kafka.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Quick JVM start for the short-lived tools; the broker itself runs with defaults.
tool_java() { "$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$KAFKA_LIBS_DIR/*" "$@"; }

pom_hash() {
  if command -v sha256sum >/dev/null; then sha256sum "$pom"; else shasum -a 256 "$pom"; fi | cut -d' ' -f1
}

is_fetched() { [[ -f $marker && $(cat "$marker") == "$(pom_hash)" ]]; }

cmd_fetch() {
  if is_fetched; then
    say "Kafka $kafka_version jars already in $KAFKA_LIBS_DIR"
    return
  fi
  command -v "$MVN" >/dev/null || die "Maven ($MVN) is needed to download Kafka"
  say "fetching Kafka $kafka_version jars with Maven…"
  mkdir -p "$(dirname "$KAFKA_LIBS_DIR")"
  # Download into a scratch directory and swap it in, so an interrupted fetch or a pom
  # change never leaves a mix of jars behind.
  local tmp mvn_log
  tmp=$(mktemp -d "$KAFKA_LIBS_DIR.tmp.XXXXXX")
  mvn_log=$tmp/maven.log
  if ! "$MVN" -B -f "$pom" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 \
      | tee "$mvn_log" | awk '
          /Downloaded from .*\.jar/ {
            match($0, /[^\/ ]+\.jar \([^ ]+ [^ ]+/)
            print "  downloaded " substr($0, RSTART, RLENGTH) ")"; fflush()
          }
          /\[ERROR\]/ { print; fflush() }' >&2; then
    tail -n 40 "$mvn_log" >&2
    rm -rf "$tmp"
    die "Maven could not fetch the Kafka jars"
  fi
  rm -f "$mvn_log"
  pom_hash >"$tmp/.fetched"
  rm -rf "$KAFKA_LIBS_DIR"
  mv "$tmp" "$KAFKA_LIBS_DIR"
  say "$(find "$KAFKA_LIBS_DIR" -name '*.jar' | wc -l | tr -d ' ') jars in $KAFKA_LIBS_DIR"
}

# The pid from the pid file, if that process is still our broker (pids get reused).
running_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(cat "$pid_file")
  [[ -n $pid ]] && ps -p "$pid" -o args= 2>/dev/null | grep -F "kafka.Kafka $props" >/dev/null || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ready means the broker answers a metadata request and lists itself in it (a broker
# that is still fenced returns no brokers). Kafka's own tool keeps this independent of
# any Python environment, and its JVM starts in about 0.3 s.
answers() {
  tool_java kafka.admin.BrokerApiVersionsCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" 2>/dev/null | grep -F "(id: 1 rack" >/dev/null
}

write_config() {
  cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$data_dir
num.partitions=3
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$log4j_props" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$log_file
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-request and per-partition lines (hundreds for the internal topics' 50
# partitions each) drown the useful ones.
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.cluster.Partition=WARN
log4j.logger.kafka.coordinator=WARN
log4j.logger.org.apache.kafka.controller.ReplicationControlManager=WARN
EOF
}

new_cluster_id() {
  # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding; one
  # starting with "-" would read as an option on the command line.
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && break
  done
  echo "$id"
}

format_storage() {
  if [[ -f $data_dir/meta.properties ]]; then
    return
  fi
  say "formatting $data_dir"
  tool_java -Dlog4j.configuration="file:$log4j_props" kafka.tools.StorageTool format \
    -t "$(new_cluster_id)" -c "$props" >"$out_file" 2>&1 || {
    cat "$out_file" >&2
    die "could not format $data_dir"
  }
}

# Stops the broker when the owning process (a test session) goes away without stopping
# it, e.g. when it is killed, so no orphan JVM keeps the ports and memory.
watch_owner() {
  local pid=$1
  (
    while kill -0 "$KAFKA_OWNER_PID" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 2; done
    if [[ $(running_pid) == "$pid" ]]; then kill -TERM "$pid"; fi
  ) </dev/null >/dev/null 2>&1 &
}

wait_ready() {
  local pid=$1 started=$SECONDS
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  printf 'kafka.sh: waiting for the broker on 127.0.0.1:%s ' "$KAFKA_PORT" >&2
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo >&2
      show_log_tail
      die "the broker exited during start-up"
    fi
    # The cheap TCP probe keeps JVM launches for when the listener is up.
    if port_open "$KAFKA_PORT" && answers; then
      echo >&2
      say "broker ready on 127.0.0.1:$KAFKA_PORT after $((SECONDS - started)) s (pid $pid)"
      return
    fi
    if ((SECONDS >= deadline)); then
      echo >&2
      show_log_tail
      die "the broker did not answer within $KAFKA_START_TIMEOUT s (still running as pid $pid)"
    fi
    printf . >&2
    sleep 0.5
  done
}

show_log_tail() {
  local f
  for f in "$out_file" "$log_file"; do
    [[ -s $f ]] || continue
    say "last lines of $f:"
    tail -n 30 "$f" >&2
  done
}

cmd_start() {
  local pid
  if pid=$(running_pid); then
    if [[ $KAFKA_FRESH == 1 ]]; then
      cmd_stop
    else
      say "broker already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
      wait_ready "$pid"
      return
    fi
  fi
  command -v "$JAVA" >/dev/null || die "Java 17+ ($JAVA) is needed to run Kafka"
  is_fetched || cmd_fetch
  if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT"; then
    die "port $KAFKA_PORT or $CONTROLLER_PORT is already in use by another process"
  fi

  mkdir -p "$BROKER_HOME"
  if [[ $KAFKA_FRESH == 1 ]]; then
    rm -rf "$data_dir"
  fi
  write_config
  format_storage
  : >"$log_file"

  say "starting Kafka $kafka_version on 127.0.0.1:$KAFKA_PORT (log: $log_file)"
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several options
  "$JAVA" $KAFKA_HEAP_OPTS -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$log4j_props" \
    -cp "$KAFKA_LIBS_DIR/*" kafka.Kafka "$props" </dev/null >"$out_file" 2>&1 &
  pid=$!
  echo "$pid" >"$pid_file"
  if [[ -n ${KAFKA_OWNER_PID:-} ]]; then
    watch_owner "$pid"
  fi
  wait_ready "$pid"
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file"
    say "no broker running on 127.0.0.1:$KAFKA_PORT"
    return
  fi
  say "stopping the broker on 127.0.0.1:$KAFKA_PORT (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "still running after $KAFKA_STOP_TIMEOUT s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  say "stopped"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    say "running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
  else
    say "not running on 127.0.0.1:$KAFKA_PORT"
    return 1
  fi
}

cmd_wipe() {
  cmd_stop
  rm -rf "$data_dir"
  say "deleted $data_dir"
}

case ${1:-} in
  fetch | start | stop | status | wipe) "cmd_$1" ;;
  *)
    echo "usage: $0 fetch|start|stop|status|wipe" >&2
    exit 2
    ;;
esac
