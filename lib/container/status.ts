import { CorralError } from '../sys/errors.ts';

/** Where a container is in its life: created → running ⇄ paused → stopped → removed. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped' | 'removed';

/** What can be asked of a container; each needs the container in one of a few states. */
export type ContainerOperation = 'start' | 'kill' | 'pause' | 'resume' | 'update' | 'exec' | 'attach' | 'commit' | 'stats';

/** What a container is, as far as the guards care: only a detached one (its supervisor holds it)
 * can start again once stopped, as docker start does with an exited container. */
export interface ContainerKind {
  detached: boolean;
}

/** A move of the table, with the guard it needs (none: always allowed). */
type Move = ContainerStatus | { to: ContainerStatus; guard: (kind: ContainerKind) => boolean };

const detachedOnly = (kind: ContainerKind): boolean => kind.detached;

/** The one transition table: the states each state may move to. */
const TRANSITIONS: Readonly<Record<ContainerStatus, readonly Move[]>> = {
  created: ['running', 'stopped', 'removed'],
  running: ['paused', 'stopped'],
  paused: ['running', 'stopped'],
  stopped: [{ to: 'running', guard: detachedOnly }, 'removed'],
  removed: [],
};

/** The guard of each operation: the states it is allowed in. */
const ALLOWED: Readonly<Record<ContainerOperation, readonly Move[]>> = {
  start: ['created', { to: 'stopped', guard: detachedOnly }],
  kill: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused'],
  update: ['created', 'running', 'paused'],
  exec: ['running'],
  attach: ['created', 'running'],
  commit: ['created', 'running', 'paused', 'stopped'],
  stats: ['created', 'running', 'paused', 'stopped'],
};

const ATTACHED: ContainerKind = { detached: false };

function allows(moves: readonly Move[], status: ContainerStatus, kind: ContainerKind): boolean {
  return moves.some((m) => (typeof m === 'string' ? m === status : m.to === status && m.guard(kind)));
}

/** True when the table lets `from` move to `to` (for a container of this kind). */
export function canTransition(from: ContainerStatus, to: ContainerStatus, kind: ContainerKind = ATTACHED): boolean {
  return allows(TRANSITIONS[from], to, kind);
}

/** True when `operation` is allowed in `status` (for a container of this kind). */
export function canDo(operation: ContainerOperation, status: ContainerStatus, kind: ContainerKind = ATTACHED): boolean {
  return allows(ALLOWED[operation], status, kind);
}

/** A container's status, moved only along the table; a wrong move or operation throws
 * ERR_CONTAINER_STATE naming the current and the wanted state. */
export class ContainerState {
  readonly #id: string;
  readonly #kind: ContainerKind;
  #status: ContainerStatus;

  constructor(id: string, initial: ContainerStatus, kind: ContainerKind = ATTACHED) {
    this.#id = id;
    this.#status = initial;
    this.#kind = kind;
  }

  /** The current status. */
  get status(): ContainerStatus {
    return this.#status;
  }

  /** Throws unless `operation` is allowed now. */
  require(operation: ContainerOperation): void {
    if (!canDo(operation, this.#status, this.#kind)) {
      const states = ALLOWED[operation].flatMap((m) => (typeof m === 'string' ? [m] : m.guard(this.#kind) ? [m.to] : []));
      throw new CorralError(`container ${this.#id} is ${this.#status}; ${operation} needs it ${states.join(' or ')}`, { code: 'ERR_CONTAINER_STATE' });
    }
  }

  /** Moves to `to`; throws if the table does not allow it. */
  moveTo(to: ContainerStatus): void {
    if (!canTransition(this.#status, to, this.#kind)) {
      throw new CorralError(`container ${this.#id} is ${this.#status}; it cannot become ${to}`, { code: 'ERR_CONTAINER_STATE' });
    }
    this.#status = to;
  }

  /** Moves to `to` when the table allows it from here, else stays (e.g. an exit seen after removal). */
  moveIfAllowed(to: ContainerStatus): boolean {
    if (!canTransition(this.#status, to, this.#kind)) return false;
    this.#status = to;
    return true;
  }
}
