/**
 * A chat message per deployment result through an incoming webhook: Discord (`{content}`, mentions
 * disabled so a commit message cannot ping @everyone) or Slack (`{text}`, with Slack's escaping and
 * `<url|label>` links). The message names the project, the commit's short sha and branch, the result,
 * the summary (or the first problems) and the link to the deployment.
 *
 * `pending` reports are not posted by default: a chat wants results, not "started" noise.
 */
import { PermanentNotifyError, retryableStatus, type DeploymentReport, type Notifier } from './notifier.ts';

export interface ChatOptions {
  url: string;
  format: 'discord' | 'slack';
  /** Post `pending` reports too. Default false. */
  pending?: boolean;
  /** Time limit of one post in ms; default 10000. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Discord refuses longer content. */
export const DISCORD_MAX = 2000;
/** Slack truncates a message's text beyond this; we cut first. */
export const SLACK_MAX = 3000;
/** Problems listed in a message. */
const MAX_PROBLEMS = 5;

const RESULT: Record<DeploymentReport['state'], { icon: string; word: string }> = {
  pending: { icon: '⏳', word: 'deploying' },
  applied: { icon: '✅', word: 'deployed' },
  'no-op': { icon: '✅', word: 'up to date' },
  failed: { icon: '❌', word: 'failed' },
  interrupted: { icon: '⚠️', word: 'interrupted' },
};

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : ` in ${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
}

function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
}

/** `&`, `<`, `>` as Slack's mrkdwn wants them. */
const slackEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The message for a report in one chat format (plain text with the format's markup). */
export function chatMessage(r: DeploymentReport, format: 'discord' | 'slack'): string {
  const esc = format === 'slack' ? slackEscape : (s: string) => s;
  const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;
  const { icon, word } = RESULT[r.state];
  const who = r.project ?? r.repo ?? 'waffle';
  const bold = (s: string) => (format === 'slack' ? `*${s}*` : `**${s}**`);
  const head = `${icon} ${bold(esc(who))} ${word}: ${code(r.commit.slice(0, 7))} on ${code(esc(r.branch))}${seconds(r.durationMs)}`;
  const lines = [head];
  if (r.description) lines.push(esc(r.description.replace(/\s+/g, ' ').trim()));
  const problems = r.problems ?? [];
  for (const p of problems.slice(0, MAX_PROBLEMS)) {
    const where = [p.file, p.service ? `service "${p.service}"` : undefined].filter(Boolean).join(': ');
    lines.push(`• ${esc(where ? `${where}: ${p.message}` : p.message)}`);
  }
  if (problems.length > MAX_PROBLEMS) lines.push(`…and ${problems.length - MAX_PROBLEMS} more`);
  if (r.url) lines.push(format === 'slack' ? `<${r.url}|deployment ${esc(r.id)}>` : r.url);
  const text = lines.join('\n');
  if (format === 'discord') return cut(text, DISCORD_MAX);
  return cut(text, SLACK_MAX);
}

/** The JSON body the webhook takes. */
export function chatPayload(r: DeploymentReport, format: 'discord' | 'slack'): object {
  const text = chatMessage(r, format);
  return format === 'discord' ? { content: text, allowed_mentions: { parse: [] } } : { text };
}

/** The webhook's host for messages (its path holds the secret part, so it is never shown). */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    throw new PermanentNotifyError('the chat webhook URL is not a URL');
  }
}

export function chatNotifier(opts: ChatOptions): Notifier {
  const host = hostOf(opts.url);
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    name: `chat:${opts.format}:${host}`,
    async notify(r: DeploymentReport, signal?: AbortSignal): Promise<void> {
      if (r.state === 'pending' && !opts.pending) return;
      const timeout = AbortSignal.timeout(timeoutMs);
      let res: Response;
      try {
        res = await doFetch(opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'wafflemaker-agent' },
          body: JSON.stringify(chatPayload(r, opts.format)),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (err) {
        // The URL holds the webhook's secret: name only its host.
        throw new Error(`${opts.format} webhook at ${host} not reached: ${(err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (err as Error).message}`);
      }
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      const detail = cut((await res.text().catch(() => '')).replace(/\s+/g, ' ').trim(), 200);
      const message = `${opts.format} webhook at ${host} answered ${res.status}${detail ? `: ${detail}` : ''}`;
      if (!retryableStatus(res.status)) throw new PermanentNotifyError(message, res.status);
      throw Object.assign(new Error(message), { status: res.status });
    },
  };
}
