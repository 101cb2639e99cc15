// The published conformance suite, run by this project's own vitest against the published MemoryBackend.
import 'reflect-metadata';
import { MemoryBackend } from 'aspect-cache';
import { describeBackendConformance } from 'aspect-cache/testing';
import { expect, test } from 'vitest';

describeBackendConformance('MemoryBackend', {
  create: ({ clock }) => new MemoryBackend({ clock }),
  richValues: true,
});

test('reflect-metadata is the version this project pinned', () => {
  expect(typeof Reflect.getMetadata).toBe('function');
});
