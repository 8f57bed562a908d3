import assert from 'node:assert/strict';
import { checkIdMap, helperArgs, isSingleIdMap, parseSubordinate, singleIdMap, toHost, toInside } from '../../lib/sys/id-map.ts';

describe('id maps (lib/sys/id-map.ts)', () => {
  const map = { uids: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }], gids: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 200000, count: 10 }] };

  it('reads a user\'s ranges from /etc/subuid text by name or by uid, skipping others and junk', () => {
    const text = 'alice:100000:65536\n1001:300000:100\nbob:x:1\n\nnobody:400000:0\nnobody:500000:7\n';
    assert.deepEqual(parseSubordinate(text, 'alice', 1000), [{ start: 100000, count: 65536 }]);
    assert.deepEqual(parseSubordinate(text, 'carol', 1001), [{ start: 300000, count: 100 }]);
    assert.deepEqual(parseSubordinate(text, 'nobody', 65534), [{ start: 500000, count: 7 }]);
    assert.deepEqual(parseSubordinate(text, 'bob', 1002), []);
  });

  it('maps ids both ways and says null for what the map leaves out', () => {
    assert.equal(toHost(map.uids, 0), 1000);
    assert.equal(toHost(map.uids, 100), 100099);
    assert.equal(toHost(map.uids, 65537), null);
    assert.equal(toInside(map.uids, 100099), 100);
    assert.equal(toInside(map.uids, 1000), 0);
    assert.equal(toInside(map.uids, 65534), null);
    assert.equal(toHost(map.gids, 11), null);
  });

  it('gives newuidmap its triples and tells the single mapping apart', () => {
    assert.deepEqual(helperArgs(map.uids), ['0', '1000', '1', '1', '100000', '65536']);
    assert.equal(isSingleIdMap(singleIdMap(1000, 1000)), true);
    assert.equal(isSingleIdMap(map), false);
  });

  it('checks a caller-given map: ranges of non-negative integers that map 0', () => {
    assert.deepEqual(checkIdMap(map), map);
    assert.equal(checkIdMap({ uids: [{ inside: 1, outside: 5, count: 1 }], gids: map.gids }), null, '0 inside must be mapped');
    assert.equal(checkIdMap({ uids: [{ inside: 0, outside: -1, count: 1 }], gids: map.gids }), null);
    assert.equal(checkIdMap({ uids: [], gids: map.gids }), null);
    assert.equal(checkIdMap('auto'), null);
  });
});
