// Holds a container on the default bridge with a published port, says "ready", and waits to be
// killed (the crash test of bridge-network.spec.ts).
import { Runtime } from '../../lib/index.ts';

const rt = new Runtime({ root: process.argv[2]! });
const c = await rt.create({ id: 'held', network: 'bridge', ports: [{ container: 80 }], command: ['sleep', '60'] });
await c.start();
process.stdout.write('ready\n');
setInterval(() => {}, 1000);
