import assert from 'node:assert/strict';
import { canDo, canTransition, ContainerState, type ContainerOperation, type ContainerStatus } from '../../lib/container/status.ts';

const STATES: ContainerStatus[] = ['created', 'running', 'paused', 'stopped', 'removed'];

describe('the container state machine', () => {
  it('allows exactly the transitions of the lifecycle', () => {
    const allowed = STATES.flatMap((from) => STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`));
    assert.deepEqual(allowed, [
      'created→running', 'created→stopped', 'created→removed',
      'running→paused', 'running→stopped',
      'paused→running', 'paused→stopped',
      'stopped→removed',
    ]);
  });

  it('guards each operation by state', () => {
    const table: Record<ContainerOperation, ContainerStatus[]> = {
      start: ['created'],
      kill: ['running', 'paused'],
      pause: ['running'],
      resume: ['paused'],
      update: ['created', 'running', 'paused'],
      exec: ['running'],
      attach: ['created', 'running'],
      commit: ['created', 'running', 'paused', 'stopped'],
      stats: ['created', 'running', 'paused', 'stopped'],
    };
    for (const [op, states] of Object.entries(table) as [ContainerOperation, ContainerStatus[]][]) {
      assert.deepEqual(STATES.filter((s) => canDo(op, s)), states, op);
    }
  });

  it('lets only a detached container start again once stopped (stopped → running, guarded)', () => {
    const detached = { detached: true };
    assert.equal(canTransition('stopped', 'running', detached), true);
    assert.equal(canTransition('stopped', 'running'), false);
    assert.equal(canDo('start', 'stopped', detached), true);
    assert.deepEqual(STATES.filter((s) => canDo('start', s, detached)), ['created', 'stopped']);
    const state = new ContainerState('c3', 'stopped', detached);
    state.require('start');
    state.moveTo('running');
    assert.equal(state.status, 'running');
    assert.throws(() => new ContainerState('c4', 'stopped').require('start'), { message: 'container c4 is stopped; start needs it created' });
    assert.throws(() => new ContainerState('c5', 'removed', detached).require('start'), { message: 'container c5 is removed; start needs it created or stopped' });
  });

  it('throws ERR_CONTAINER_STATE naming the current and the wanted state', () => {
    const state = new ContainerState('c1', 'stopped');
    assert.throws(() => state.require('exec'), { code: 'ERR_CONTAINER_STATE', message: 'container c1 is stopped; exec needs it running' });
    assert.throws(() => state.moveTo('running'), { code: 'ERR_CONTAINER_STATE', message: 'container c1 is stopped; it cannot become running' });
    assert.equal(state.status, 'stopped');
  });

  it('moves along the table and ignores a move the table refuses when asked to', () => {
    const state = new ContainerState('c2', 'created');
    state.moveTo('running');
    state.moveTo('paused');
    state.moveTo('running');
    state.moveTo('stopped');
    assert.equal(state.moveIfAllowed('running'), false);
    assert.equal(state.status, 'stopped');
    state.moveTo('removed');
    assert.equal(state.moveIfAllowed('stopped'), false);
    assert.equal(state.status, 'removed');
  });
});
