// What `corral run` does at a terminal and with signals: -t gives the container a terminal sized
// like ours, -i connects our input to it in raw mode (restored on every way out), the window size
// follows ours, and signals sent to corral reach the container without ever leaving it hanging.
import type { Container, ContainerSpec, Terminal, TerminalSize } from '../index.ts';
import { rawOutput } from '../sys/pty.ts';

/** The flags of `corral run` this file acts on. */
export interface TerminalFlags {
  interactive: boolean;
  tty: boolean;
  /** Forward SIGINT, SIGTERM and SIGHUP to the container (default true, as docker's --sig-proxy). */
  sigProxy: boolean;
  /** Milliseconds stop() waits between SIGTERM and SIGKILL. */
  stopTimeout: number;
}

/** Our terminal's size, when stdout is one. */
export function hostTerminalSize(): TerminalSize | null {
  const { columns, rows } = process.stdout;
  return process.stdout.isTTY && columns > 0 && rows > 0 ? { cols: columns, rows } : null;
}

/** The spec's stdio for the flags: a terminal sized like ours with -t, else our own stdio (-i or
 * not: our stdin is the container's, as it always was). */
export function stdioSpec(flags: TerminalFlags): Pick<ContainerSpec, 'stdio' | 'tty' | 'consoleSize'> {
  if (!flags.tty) return { stdio: 'inherit' };
  const size = hostTerminalSize();
  return { tty: true, ...(size ? { consoleSize: size } : {}) };
}

/** Connects a container's terminal (its first process's, or an exec'd one's) to ours: its output to
 * our stdout, the window size following ours, and with interactive our input in raw mode; the
 * returned function undoes it (raw mode off). */
export function connectTerminal(terminal: Terminal, interactive: boolean): () => void {
  const undo: (() => void)[] = [];
  terminal.pipe(process.stdout, { end: false });
  undo.push(() => terminal.unpipe(process.stdout));
  if (process.stdout.isTTY) {
    const resize = (): void => {
      if (!terminal.destroyed) terminal.resize({ cols: process.stdout.columns, rows: process.stdout.rows });
    };
    process.stdout.on('resize', resize);
    undo.push(() => process.stdout.off('resize', resize));
  }
  if (interactive) {
    undo.push(rawInput());
    process.stdin.pipe(terminal, { end: false });
    undo.push(() => {
      process.stdin.unpipe(terminal);
      process.stdin.pause();
    });
  }
  return () => undo.reverse().forEach((f) => f());
}

/** Puts our terminal (when stdin is one) in raw mode: keys, Ctrl-C and Ctrl-Z included, go to the
 * container's terminal, which turns them into signals for its foreground process group; the
 * returned function restores it. */
export function rawInput(): () => void {
  if (!process.stdin.isTTY) return () => {};
  process.stdin.setRawMode(true);
  // The container's terminal did the output processing already (setRawMode(false) restores it).
  rawOutput(0);
  // Node itself also puts its stdio's terminal mode back when it exits, by a signal or an
  // uncaught error too; this undoes it as soon as the container is done (commit goes on).
  return () => process.stdin.setRawMode(false);
}

/** Connects a started container's terminal to ours (-t; input only with -i) and sets up the signal
 * handling; the returned function undoes all of it (raw mode off, listeners gone). */
export function attachTerminal(container: Container, flags: TerminalFlags): () => void {
  const undo = [handleSignals(container, flags)];
  if (container.terminal) undo.push(connectTerminal(container.terminal, flags.interactive));
  return () => undo.reverse().forEach((f) => f());
}

/** Calls handler on SIGINT, SIGTERM and SIGHUP sent to corral (the signals it proxies) instead of
 * dying of them; the returned function removes the listeners. */
export function onProxiedSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, handler);
  return () => signals.forEach((s) => process.off(s, handler));
}

/** SIGINT, SIGTERM and SIGHUP sent to corral. With --sig-proxy they are forwarded; SIGTERM and
 * SIGHUP, and a second SIGINT, then stop the container (SIGTERM, SIGKILL after the stop timeout),
 * so a PID 1 that ignores them cannot keep it running. Without --sig-proxy each stops it. */
function handleSignals(container: Container, flags: TerminalFlags): () => void {
  let interrupted = false;
  const stop = (): void => {
    void container.stop({ timeout: flags.stopTimeout });
  };
  const handler = (signal: NodeJS.Signals): void => {
    if (container.status !== 'running') return;
    if (!flags.sigProxy) return stop();
    if (signal !== 'SIGTERM') container.kill(signal);
    if (signal !== 'SIGINT' || interrupted) stop();
    interrupted = true;
  };
  return onProxiedSignals(handler);
}
