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
