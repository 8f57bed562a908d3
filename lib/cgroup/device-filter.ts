/** The cgroup v2 device filter: an allow-list of devices assembled into a
 * BPF_PROG_TYPE_CGROUP_DEVICE program (the kernel runs it on every open and mknod of a device by a
 * process of the group; 0 = EPERM). As runc's and crun's generators, one block per rule. */

import { BPF_INSN_SIZE } from '../sys/bpf.ts';

/** One allowed device class: type 'c' (char), 'b' (block) or 'a' (both); a null major or minor
 * matches any; access is a combination of r (read), w (write), m (mknod). */
export interface DeviceRule {
  type: 'a' | 'b' | 'c';
  major: number | null;
  minor: number | null;
  access: string;
}

// struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
const DEV_TYPE = { b: 1, c: 2 } as const;
const ACCESS_BIT: Record<string, number> = { m: 1, r: 2, w: 4 };
const ALL_ACCESS = 7;

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K = 0x54;
const ALU32_RSH_K = 0x74;
const ALU32_MOV_X = 0xbc;
const ALU64_MOV_K = 0xb7;
const JNE_K = 0x55;
const JNE_X = 0x5d;
const EXIT = 0x95;

/** One instruction: [code, dst, src, off, imm]. */
export type BpfInsn = [code: number, dst: number, src: number, off: number, imm: number];

/** The access bits of an 'rwm' string. */
export function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access) bits |= ACCESS_BIT[ch] ?? 0;
  return bits;
}

/** The blocks of one rule: each test jumps past the block when the request does not match; the
 * block ends with "return 1" (allow). */
function ruleBlock(rule: DeviceRule): BpfInsn[] {
  const tests: ((skip: number) => BpfInsn[])[] = [];
  const type = rule.type;
  if (type !== 'a') tests.push((skip) => [[JNE_K, 2, 0, skip, DEV_TYPE[type]]]);
  const bits = accessBits(rule.access);
  if (bits !== ALL_ACCESS) {
    // The requested access must be a subset of the rule's: (r3 & bits) == r3.
    tests.push((skip) => [[ALU32_MOV_X, 1, 3, 0, 0], [ALU32_AND_K, 1, 0, 0, bits], [JNE_X, 1, 3, skip, 0]]);
  }
  const { major, minor } = rule;
  if (major !== null) tests.push((skip) => [[JNE_K, 4, 0, skip, major]]);
  if (minor !== null) tests.push((skip) => [[JNE_K, 5, 0, skip, minor]]);
  const accept: BpfInsn[] = [[ALU64_MOV_K, 0, 0, 0, 1], [EXIT, 0, 0, 0, 0]];
  // Built back to front, so each test knows how many instructions remain until the next block.
  let out = accept;
  for (const test of tests.reverse()) out = [...test(out.length), ...out];
  return out;
}

/** True for a rule that matches every request. */
function matchesAll(rule: DeviceRule): boolean {
  return rule.type === 'a' && rule.major === null && rule.minor === null && accessBits(rule.access) === ALL_ACCESS;
}

/** The program's instructions for an allow-list: a request matching any rule is allowed,
 * everything else denied. Nothing follows a rule that matches everything (the verifier refuses
 * unreachable instructions). */
export function deviceFilterInsns(rules: readonly DeviceRule[]): BpfInsn[] {
  const prologue: BpfInsn[] = [
    [LDX_MEM_W, 2, 1, 0, 0], [ALU32_AND_K, 2, 0, 0, 0xffff], // r2 = type
    [LDX_MEM_W, 3, 1, 0, 0], [ALU32_RSH_K, 3, 0, 0, 16], // r3 = access
    [LDX_MEM_W, 4, 1, 4, 0], // r4 = major
    [LDX_MEM_W, 5, 1, 8, 0], // r5 = minor
  ];
  const deny: BpfInsn[] = [[ALU64_MOV_K, 0, 0, 0, 0], [EXIT, 0, 0, 0, 0]];
  const all = rules.findIndex(matchesAll);
  if (all >= 0) return [...prologue, ...rules.slice(0, all + 1).flatMap(ruleBlock)];
  return [...prologue, ...rules.flatMap(ruleBlock), ...deny];
}

/** The instructions encoded as struct bpf_insn, for bpf(BPF_PROG_LOAD). */
export function encodeInsns(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * BPF_INSN_SIZE);
  insns.forEach(([code, dst, src, off, imm], i) => {
    const at = i * BPF_INSN_SIZE;
    buf.writeUInt8(code, at);
    buf.writeUInt8((src << 4) | dst, at + 1);
    buf.writeInt16LE(off, at + 2);
    buf.writeInt32LE(imm | 0, at + 4);
  });
  return buf;
}
