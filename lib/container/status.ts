import { CorralError } from '../sys/errors.ts';

/** Where a container is in its life: created → running ⇄ paused → stopped → removed. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped' | 'removed';

/** What can be asked of a container; each needs the container in one of a few states. */
export type ContainerOperation = 'start' | 'kill' | 'pause' | 'resume' | 'update' | 'exec' | 'commit' | 'stats';

/** The one transition table: the states each state may move to. */
const TRANSITIONS: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = {
  created: ['running', 'stopped', 'removed'],
  running: ['paused', 'stopped'],
  paused: ['running', 'stopped'],
  stopped: ['removed'],
  removed: [],
};

/** The guard of each operation: the states it is allowed in. */
const ALLOWED: Readonly<Record<ContainerOperation, readonly ContainerStatus[]>> = {
  start: ['created'],
  kill: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused'],
  update: ['created', 'running', 'paused'],
  exec: ['running'],
  commit: ['created', 'running', 'paused', 'stopped'],
  stats: ['created', 'running', 'paused', 'stopped'],
};

/** True when the table lets `from` move to `to`. */
export function canTransition(from: ContainerStatus, to: ContainerStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** True when `operation` is allowed in `status`. */
export function canDo(operation: ContainerOperation, status: ContainerStatus): boolean {
  return ALLOWED[operation].includes(status);
}

/** A container's status, moved only along the table; a wrong move or operation throws
 * ERR_CONTAINER_STATE naming the current and the wanted state. */
export class ContainerState {
  readonly #id: string;
  #status: ContainerStatus;

  constructor(id: string, initial: ContainerStatus) {
    this.#id = id;
    this.#status = initial;
  }

  /** The current status. */
  get status(): ContainerStatus {
    return this.#status;
  }

  /** Throws unless `operation` is allowed now. */
  require(operation: ContainerOperation): void {
    if (!canDo(operation, this.#status)) {
      throw new CorralError(`container ${this.#id} is ${this.#status}; ${operation} needs it ${ALLOWED[operation].join(' or ')}`, { code: 'ERR_CONTAINER_STATE' });
    }
  }

  /** Moves to `to`; throws if the table does not allow it. */
  moveTo(to: ContainerStatus): void {
    if (!canTransition(this.#status, to)) {
      throw new CorralError(`container ${this.#id} is ${this.#status}; it cannot become ${to}`, { code: 'ERR_CONTAINER_STATE' });
    }
    this.#status = to;
  }

  /** Moves to `to` when the table allows it from here, else stays (e.g. an exit seen after removal). */
  moveIfAllowed(to: ContainerStatus): boolean {
    if (!canTransition(this.#status, to)) return false;
    this.#status = to;
    return true;
  }
}
