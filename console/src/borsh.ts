// A minimal borsh writer for the few agora types the console signs or verifies.
import { concat, fromHex, utf8 } from "./bytes";

export class Writer {
  private parts: Uint8Array[] = [];

  bytes(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }
  u8(v: number): this {
    return this.bytes(Uint8Array.of(v & 0xff));
  }
  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.bytes(b);
  }
  u64(v: bigint | number | string): this {
    const n = BigInt(v);
    if (n < 0n || n >= 1n << 64n) throw new RangeError(`u64 out of range: ${n}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return this.bytes(b);
  }
  f32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.bytes(b);
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  string(s: string): this {
    const b = utf8(s);
    this.u32(b.length);
    return this.bytes(b);
  }
  /** A fixed 32-byte value given as hex (AccountId, Hash32). */
  hex32(h: string): this {
    return this.bytes(fromHex(h, 32));
  }
  finish(): Uint8Array {
    return concat(...this.parts);
  }
}
