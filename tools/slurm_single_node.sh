#!/usr/bin/env bash
# Single-node SLURM for CI on Debian 12, as root, without systemd.
#   bash tools/slurm_single_node.sh start              # munge + slurmctld + slurmd (no accounting DB; poll with squeue)
#   bash tools/slurm_single_node.sh start --slurmdbd   # additionally MariaDB + slurmdbd, so `sacct` works
#   bash tools/slurm_single_node.sh stop               # stop the daemons this script started (by PID)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PIDS=/run/slurm-ci.pids

wait_for() {  # wait_for <seconds> <command...>
  local n=$1; shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timeout waiting for: $*" >&2; return 1
}

stop() {
  [ -f "$PIDS" ] || { echo "nothing to stop"; return 0; }
  # reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged
  tac "$PIDS" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      echo "stopped $name ($pid)"
    fi
  done
  rm -f "$PIDS"
  # slurmctld leaves its pid file behind; a stale /run/slurmctld.pid makes the
  # slurmctld package's prerm run scancel and fail (apt-get remove/purge breaks)
  rm -f /run/slurmctld.pid /run/slurmd.pid /run/slurmdbd.pid
}

start() {
  local dbd=0; [ "${1:-}" = "--slurmdbd" ] && dbd=1
  local t0 t1 t2
  t0=$(date +%s)
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
  [ $dbd = 1 ] && apt-get install -y -q --no-install-recommends mariadb-server slurmdbd >/dev/null
  t1=$(date +%s)

  local node cpus mem acct
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)   # a bit below actual

  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  chown slurm:slurm /var/spool/slurmctld /var/log/slurm
  chown munge:munge /run/munge
  chmod 755 /run/munge

  # Fake GPU: a gpu GRES needs a File= (file-less GPUs are dropped by slurmd -> node INVAL/DRAIN).
  echo "NodeName=${node} Name=gpu File=/dev/null" > /etc/slurm/gres.conf

  if [ $dbd = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu"
  else
    acct="AccountingStorageType=accounting_storage/none"
  fi

  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
${acct}
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
GresTypes=gpu
ReturnToService=2
MinJobAge=600
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF

  # The Debian package generates /etc/munge/munge.key; make one if it is missing.
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi

  : > "$PIDS"
  runuser -u munge -- /usr/sbin/munged             # forks; pid in /run/munge/munged.pid
  wait_for 10 test -s /run/munge/munged.pid
  echo "munged $(cat /run/munge/munged.pid)" >> "$PIDS"
  wait_for 10 bash -c 'munge -n | unmunge'

  if [ $dbd = 1 ]; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/slurm/mariadbd.out 2>&1 &
    echo "mariadbd $!" >> "$PIDS"
    wait_for 30 mysqladmin ping
    mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
    chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
    rm -f /run/slurmdbd.pid
    /usr/sbin/slurmdbd                                # forks
    wait_for 30 test -s /run/slurmdbd.pid
    echo "slurmdbd $(cat /run/slurmdbd.pid)" >> "$PIDS"
    wait_for 30 sacctmgr -n list cluster               # slurmdbd answers
  fi

  rm -f /run/slurmctld.pid /run/slurmd.pid
  /usr/sbin/slurmctld -c                              # forks; -c: a cold start (no node drained by an earlier run)
  wait_for 30 test -s /run/slurmctld.pid
  echo "slurmctld $(cat /run/slurmctld.pid)" >> "$PIDS"
  /usr/sbin/slurmd                                    # forks
  wait_for 30 test -s /run/slurmd.pid
  echo "slurmd $(cat /run/slurmd.pid)" >> "$PIDS"

  wait_for 60 bash -c "sinfo -h -N -o '%T' | grep -qE '^(idle|mixed|allocated)$'"
  [ $dbd = 1 ] && wait_for 30 bash -c "sacctmgr -n list cluster format=cluster | grep -q ci && sacct -X -n"
  t2=$(date +%s)
  sinfo
  echo "slurm-ci: install $((t1 - t0)) s, start $((t2 - t1)) s"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [--slurmdbd] | stop" >&2; exit 2 ;;
esac
