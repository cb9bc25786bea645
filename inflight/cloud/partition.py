"""Sharing the services among several probers: a tooz group.

Every prober joins the group `[coordination] group_name` under its own host
name, with its weight, and probes the services a hash ring of the members
gives it; all probers read the same table, so that every service has one
prober. Membership changes are seen when `check()` runs, on a timer: it
reads the group's members whole, each time. (tooz's partitioned group keeps
a ring that follows join and leave events from run_watchers(), but it
builds the ring from one read of the members and starts watching from
another: a prober joining between the two is never on that ring.) A
prober that stops leaves the group at once, one that dies leaves it when
its heartbeat key expires (the backend URL's `timeout`).

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
        self._joined = False
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
            if not self._joined:
                self._join()
            changed = self._take(self._members_now())
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
        """Start the coordinator and join the group with this weight.

        The member id is the host's name, the same in a worker that
        replaces another (on SIGHUP) or a prober started again after it
        died: an entry left by one is taken over."""
        if not self._started:
            self._coordinator.start(start_heart=True)
            self._started = True
        capabilities = {'weight': self._weight}   # as tooz's partitioner
        try:
            self._coordinator.join_group_create(self._group, capabilities)
        except coordination.MemberAlreadyExist:
            self._coordinator.leave_group(self._group).get()
            self._coordinator.join_group_create(self._group, capabilities)
        self._joined = True
        LOG.info('Joined the coordination group %s as %s',
                 self._group.decode(), self.member_id.decode())

    def _members_now(self):
        """member id -> weight, of the group as the backend holds it now.

        Members without this prober mean the group was lost (a backend
        started again empty): it is joined again, the share kept till then.
        """
        members = self._coordinator.get_members(self._group).get()
        if self.member_id not in members:
            LOG.info('The group %s lost this prober; joining it again',
                     self._group.decode())
            self._joined = False
            self._join()
            members = self._coordinator.get_members(self._group).get()
        weights = {}
        for member in members:
            weight = self.members.get(member)
            if weight is None:
                weight = self._weight_of(member)
            if weight is not None:
                weights[member] = weight
        return weights

    def _weight_of(self, member):
        """`member`'s weight, None if it left while asked."""
        try:
            got = self._coordinator.get_member_capabilities(
                self._group, member).get()
        except coordination.MemberNotJoined:
            return None
        weight = got.get('weight', 1) if isinstance(got, dict) else 1
        return weight if isinstance(weight, int) and weight > 0 else 1

    def _take(self, members):
        """Use `members` from now on; True if they changed."""
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
            if self._joined:
                self._coordinator.leave_group(self._group).get()
                self._joined = False
            self._coordinator.stop()
        except Exception as e:  # noqa: BLE001 - each driver has its errors
            LOG.info('Could not leave the coordination group; its members '
                     'see this prober leave when its heartbeat expires: %s',
                     e)
        self._started = False
