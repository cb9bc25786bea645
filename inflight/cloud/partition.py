"""Sharing the services among several probers: a tooz partitioned group.

Every prober joins the group `[coordination] group_name` under its own host
name and probes the services tooz's hash ring gives it; all probers read the
same table, so that every service has one prober. Membership changes are
seen when `check()` runs (tooz's run_watchers): a prober that stops leaves
the group at once, one that dies leaves it when its heartbeat key expires
(the backend URL's `timeout`).

When the backend cannot be reached, each prober keeps the share it had and
says so once; a prober that dies meanwhile is seen by nobody, so its share
goes unprobed until the backend is back. A prober probes nothing until its
first check answers (a few milliseconds with the backend up), and every
service when that check failed, until it joins.
"""

from importlib import metadata
import logging
import threading

from tooz import coordination
from tooz import hashring

from inflight import logs

LOG = logging.getLogger(__name__)

# Points each member (times its weight) has on the hash ring. Every prober
# must place the members alike, so this is no option.
PARTITIONS = 100

# Drivers tooz has that cannot hold a group with watchers.
NO_GROUPS = ('ipc', 'mysql', 'postgresql')


def drivers():
    """The tooz drivers that hold partitioned groups, by URL scheme."""
    return sorted(ep.name for ep in metadata.entry_points(
        group=coordination.TOOZ_BACKENDS_NAMESPACE)
        if ep.name not in NO_GROUPS)


class Partition:
    """This prober's share of the services, as the group's members stand.

    Whose each service is, is kept per membership: hashing every row of a
    large table on every read would cost more than reading it.
    """

    def __init__(self, coordinator, member_id, group_name, weight=1):
        self._coordinator = coordinator
        self.member_id = member_id
        self._group = group_name.encode('utf-8')
        self._weight = weight
        self._lock = threading.Lock()
        self._started = False
        self._partitioner = None      # tooz's: follows the members
        self.members = {}             # member id -> weight, as shared now
        self._ring = None             # a hash ring of those members
        self._mine = {}               # Key -> whether it is ours, on _ring
        self._failures = 0            # checks in a row that failed

    @classmethod
    def from_conf(cls, conf):
        """The partition [coordination] sets up, or None when it is unset."""
        group = conf.coordination
        if not group.backend_url:
            return None
        member_id = conf.host.encode('utf-8')
        return cls(coordination.get_coordinator(group.backend_url, member_id),
                   member_id, group.group_name, group.weight)

    def share(self, services):
        """The part of `services` this prober probes: none before the first
        check, all of them after a first check that failed, until it joins."""
        with self._lock:
            ring, mine = self._ring, self._mine
        if ring is None:
            return list(services) if self._failures else []
        share = []
        for service in services:
            ours = mine.get(service.key)
            if ours is None:
                ours = mine[service.key] = self.member_id in ring.get_nodes(
                    service.key.__tooz_hash__())
            if ours:
                share.append(service)
        return share

    def check(self):
        """Join the group if not yet joined, and see who is in it now: True
        when the share changed (and the services should be shared again),
        False when it did not, None when the backend could not tell (the
        share stays as it was; said once), or True the first time when it
        never joined (every service is probed until it does)."""
        try:
            if self._partitioner is None:
                changed = self._join()
            else:
                self._coordinator.run_watchers()
                changed = self._take(self._partitioner)
        except Exception as e:  # noqa: BLE001 - each driver has its errors
            never_joined = self._ring is None and not self._failures
            self._failed(e)
            return True if never_joined else None    # now: every service
        if self._failures:
            LOG.info('Reached the coordination backend again after %d failed '
                     'checks; probing a share of %d probers',
                     self._failures, len(self.members))
            self._failures = 0
        return changed

    def _join(self):
        """Start the coordinator, join the group and take its members.

        The member id is the host's name, the same in a worker that
        replaces another (on SIGHUP) or a prober started again after it
        died: an entry left by one is taken over."""
        if not self._started:
            self._coordinator.start(start_heart=True)
            self._started = True
        try:
            partitioner = self._coordinator.join_partitioned_group(
                self._group, weight=self._weight, partitions=PARTITIONS)
        except coordination.MemberAlreadyExist:
            self._coordinator.leave_group(self._group).get()
            partitioner = self._coordinator.join_partitioned_group(
                self._group, weight=self._weight, partitions=PARTITIONS)
        LOG.info('Joined the coordination group %s as %s',
                 self._group.decode(), self.member_id.decode())
        return self._take(partitioner)

    def _take(self, partitioner):
        """Use `partitioner`'s members from now on; True if they changed.

        Members without this prober mean the group was lost (a backend
        started again empty): it is joined again, the share kept till then.
        """
        # Copied here, in the only thread that runs the watchers: share()
        # goes on with a ring of its own while they change tooz's.
        members = dict(partitioner.ring.nodes)
        self._partitioner = partitioner
        if self.member_id not in members:
            partitioner.stop()
            self._partitioner = None
            LOG.info('The group %s lost this prober; joining it again',
                     self._group.decode())
            return self._join()
        if members == self.members:
            return False
        ring = hashring.HashRing([], partitions=PARTITIONS)
        for member, weight in members.items():
            ring.add_node(member, weight)
        with self._lock:
            self.members, self._ring, self._mine = members, ring, {}
        LOG.info('%s the services: %s', '1 prober probes' if len(members) == 1
                 else '%d probers share' % len(members),
                 ', '.join(sorted(m.decode() for m in members)))
        return True

    def _failed(self, error):
        if not self._failures:
            if self._ring is None:
                LOG.warning('Could not join the coordination group, probing '
                            'every service until it answers: %s',
                            logs.reason(error))
            else:
                LOG.warning('Could not reach the coordination backend, '
                            'probing the share of %d probers as it was until '
                            'it answers: %s', len(self.members),
                            logs.reason(error))
        self._failures += 1

    def leave(self):
        """Leave the group, so that the others take the share at once.

        With the backend away, nothing is tried: tooz's heartbeat would
        hold the stop until it answers. The others see this prober leave
        when its heartbeat key expires."""
        if not self._started or self._failures:
            return
        try:
            if self._partitioner is not None:
                self._coordinator.leave_partitioned_group(self._partitioner)
            self._coordinator.stop()
        except Exception as e:  # noqa: BLE001 - each driver has its errors
            LOG.info('Could not leave the coordination group; its members '
                     'see this prober leave when its heartbeat expires: %s',
                     e)
        self._started = False
