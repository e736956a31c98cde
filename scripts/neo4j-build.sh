#!/usr/bin/env bash
# Build the embedded Neo4j 5.26 launcher (scripts/neo4j) with Maven, once: again only when its
# pom or source changed or a dependency jar is gone. Writes scripts/neo4j/target/classpath.txt.
# Used by scripts/neo4j-start.sh, and by the tests that run a Neo4j of their own.
set -euo pipefail
MODULE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/neo4j"
SECONDS=0
command -v java >/dev/null 2>&1 || { echo "neo4j: 'java' (17+) not found on PATH; install a JDK, e.g. apt-get install -y openjdk-17-jdk-headless" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || { echo "neo4j: 'mvn' not found on PATH; install Maven, e.g. apt-get install -y maven" >&2; exit 1; }
# Build once; again only when the pom or the source changed or a dependency jar is gone.
CP_FILE="$MODULE/target/classpath.txt"
need_build=0
if [[ ! -d "$MODULE/target/classes" || ! -s "$CP_FILE" ]]; then
  need_build=1
elif [[ -n "$(find "$MODULE/pom.xml" "$MODULE/src" -type f -newer "$CP_FILE" -print -quit)" ]]; then
  need_build=1
else
  IFS=: read -r -a jars <"$CP_FILE" || true  # no trailing newline
  for jar in "${jars[@]}"; do [[ -e "$jar" ]] || { need_build=1; break; }; done
fi
if ((need_build)); then
  echo "neo4j: building launcher with Maven (first run downloads Neo4j from Maven Central)..."
  build_start=$SECONDS
  # (the sed drops the bare ANSI resets Debian's Maven 3.8.7 prints even with -q -B)
  mvn -q -B -f "$MODULE/pom.xml" compile dependency:build-classpath -Dmdep.outputFile="$CP_FILE" 2>&1 \
    | sed $'s/\e\\[[0-9;]*m//g' >&2
  touch "$CP_FILE"
  echo "neo4j: build took $((SECONDS - build_start))s"
fi

