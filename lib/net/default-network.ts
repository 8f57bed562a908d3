/** The network containers join with network: 'bridge' (made on first use). Its own module, so the
 * spec compiler names it without loading the network stack. */
export const DEFAULT_NETWORK = 'bridge';
