/** Shared by the Ink component tests: recorded event streams, plans, and a colour-free setup. */
import fs from 'node:fs';
import path from 'node:path';
import kleur from 'kleur';
import type { ApplyEvent, Plan } from '../runtime/model.ts';
import { loadUiDeps } from '../cli/ui/deps.ts';
import { PKG_ROOT, parseNdjson } from './helpers.ts';

export const EVENTS_DIR = path.join(PKG_ROOT, 'test', 'fixtures', 'events');

export function recorded(name: string): ApplyEvent[] {
  return parseNdjson(fs.readFileSync(path.join(EVENTS_DIR, name), 'utf8')) as unknown as ApplyEvent[];
}

export function recordedPlan(name: string): Plan {
  return JSON.parse(fs.readFileSync(path.join(EVENTS_DIR, name), 'utf8'));
}

export async function setupUi(): Promise<void> {
  kleur.enabled = false;
  await loadUiDeps();
}

/** Every line of a frame, with the longest visible width. */
export function maxLineWidth(frame: string): number {
  return Math.max(...frame.split('\n').map((l) => [...l].length));
}

export const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

/** Retries `check` (which throws until satisfied) for up to `timeoutMs`: renders are asynchronous. */
export async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await tick(10);
    }
  }
}

/** Waits until the app reads keys (useInput put stdin in raw mode and listens), then a little longer. */
export async function inputReady(stdin: { listenerCount(event: string): number }): Promise<void> {
  await eventually(() => {
    if (stdin.listenerCount('readable') === 0) throw new Error('the app does not read keys yet');
  });
  await tick(20);
}
