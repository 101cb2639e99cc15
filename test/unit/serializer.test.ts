// SuperJsonSerializer on its own (SPEC §8: values a serializer cannot round-trip are refused, naming the type).
import SuperJSON from 'superjson';
import { describe, expect, it } from 'vitest';
import { SuperJsonSerializer } from '../../src/redis.js';

const serializer = new SuperJsonSerializer();
const roundTrip = (value: unknown): unknown => serializer.deserialize(serializer.serialize(value));

class Plain {
  constructor(readonly id: number) {}
}

describe('SuperJsonSerializer', () => {
  it('keeps cycles and shared references, and its walk of a cyclic value ends', () => {
    const node: { name: string; self?: unknown; list: unknown[] } = { name: 'a', list: [] };
    node.self = node;
    node.list.push(node, node);
    const back = roundTrip(node) as typeof node;
    expect(back.self).toBe(back);
    expect(back.list[0]).toBe(back);
  });

  it('refuses a value nested deeper than 500 levels with a clear message, in bounded time', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 20_000; i++) {
      const next = {};
      deep.n = next;
      deep = next;
    }
    expect(() => serializer.serialize(root)).toThrow(/nested deeper than 500 levels/);
    let shallow: Record<string, unknown> = {};
    const fine = shallow;
    for (let i = 0; i < 400; i++) {
      const next = {};
      shallow.n = next;
      shallow = next;
    }
    expect(() => serializer.serialize(fine)).not.toThrow();
  });

  it('names the path of the refused value', () => {
    expect(() => serializer.serialize({ a: new Map([['k', [0, new Plain(1)]]]) })).toThrow(/an instance of Plain at \.a\.get\(…\)\[1\]/);
    expect(() => serializer.serialize(new Set([() => 1]))).toThrow(/a function at <item>/);
    expect(() => serializer.serialize(Object.assign([1], { extra: true }))).toThrow(/an array with extra properties/);
    expect(() => serializer.serialize(Object.defineProperty({}, 'hidden', { value: 1, enumerable: false }))).toThrow(/a non-enumerable property at \.hidden/);
    expect(() => serializer.serialize(new Number(1))).toThrow(/an instance of Number/);
  });

  it('accepts objects with a null prototype (Object.groupBy) and values a registered custom transformer handles', () => {
    const grouped = Object.assign(Object.create(null) as Record<string, number[]>, { odd: [1, 3], even: [2] });
    expect(roundTrip(grouped)).toEqual({ odd: [1, 3], even: [2] });
    const instance = new SuperJSON();
    instance.registerCustom<Plain, number>({ isApplicable: (v): v is Plain => v instanceof Plain, serialize: v => v.id, deserialize: v => new Plain(v) }, 'test.Plain');
    const custom = new SuperJsonSerializer(instance);
    expect(custom.deserialize(custom.serialize([new Plain(7)]))).toEqual([new Plain(7)]);
    expect(() => serializer.serialize([new Plain(7)])).toThrow(/instance of Plain/); // not registered on the default instance
  });
});
