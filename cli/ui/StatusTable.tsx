/** @jsxImportSource . */
/** `waffle status` as an Ink table (used live by `status --watch`). */
import kleur from 'kleur';
import { statusLines, type StatusRow } from '../status.ts';
import { truncate } from '../render/text.ts';
import { Lines } from './Lines.tsx';

export interface StatusTableProps {
  project: string;
  rows: StatusRow[];
  width: number;
  /** When the rows were read (epoch ms), for the footer. */
  updatedAt?: number;
  error?: string;
  footer?: string;
}

export function StatusTable({ project, rows, width, updatedAt, error, footer }: StatusTableProps) {
  const lines = [kleur.bold(truncate(`project ${project}`, width)), ...statusLines(rows, width)];
  if (error) lines.push(kleur.red(truncate(`error: ${error}`, width)));
  if (updatedAt !== undefined || footer) {
    const at = updatedAt !== undefined ? `updated ${new Date(updatedAt).toTimeString().slice(0, 8)}` : '';
    lines.push(kleur.dim(truncate([at, footer].filter(Boolean).join(' · '), width)));
  }
  return <Lines lines={lines} />;
}
