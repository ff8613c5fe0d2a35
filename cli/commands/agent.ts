/**
 * `waffle agent`: the headless deployer. Keeps this host equal to a branch of the source-of-truth
 * repository: reconciles at start, on every signed GitHub push, on the git poll and on request
 * (`waffle agent deploy`). Every setting is a flag with a WAFFLE_AGENT_* variable, so a systemd unit
 * or a `docker run` line can set them; secrets (webhook secret, tokens, keys) are read from files and
 * never enter the evaluation's environment. SIGTERM lets the running deploy finish, then exits; a
 * second one interrupts it (what was in flight rolls back).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { cliOf, Exit, type App, type Cli } from '../context.ts';
import { agentRequest, clientOptions, type ClientOptions } from '../agent-client.ts';

interface AgentFlags {
  repo?: string;
  githubRepo?: string;
  branch: string;
  listen: string;
  webhookSecretFile?: string;
  tokenFile?: string;
  poll: string;
  gitTokenFile?: string;
  sshKeyFile?: string;
  knownHostsFile?: string;
  githubTokenFile?: string;
  githubAppId?: string;
  githubAppKeyFile?: string;
  githubAppInstallation?: string;
  githubApiUrl?: string;
  chatWebhookUrlFile?: string;
  chatFormat: string;
  publicUrl?: string;
  hostPolicy?: string;
  keep: string;
  renewEvery: string;
  logFormat?: string;
  previews: boolean;
  previewForks?: boolean;
  pageTokenFile?: string;
  pageOpen?: boolean;
  registrySecretFile?: string;
  writeBack?: boolean;
  writeBackAuthor: string;
  restartBudget: string;
  repair: boolean;
}

/** `5/5m`: restarts allowed per window. */
export function parseBudget(text: string): { max: number; windowMs: number } {
  const m = /^(\d+)\/(.+)$/.exec(text.trim());
  const max = Number(m?.[1]);
  if (!m || !Number.isInteger(max) || max < 1) throw new Exit(1, `waffle: --restart-budget takes restarts/window such as 5/5m, not "${text}"`);
  const windowMs = parseDuration(m[2]!, '--restart-budget');
  if (windowMs <= 0) throw new Exit(1, `waffle: --restart-budget needs a window longer than 0, not "${text}"`);
  return { max, windowMs };
}

/** `60s`, `5m`, `1h`, `500ms`, `0` → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Exit(1, `waffle: ${flag} takes a duration such as 60s, 5m or 0 (off), not "${text}"`);
  const n = Number(m[1]);
  return Math.round(n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000));
}

/** `host:port` (or `[v6]:port`, or a port alone). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? (/^\d+$/.test(text) ? [text, undefined, '127.0.0.1', text] : null);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port < 65536)) throw new Exit(1, `waffle: --listen takes host:port (e.g. 127.0.0.1:8787), not "${text}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A secret from a file: its content without the trailing newline; an Exit naming the flag when it cannot be read. */
function readSecret(cli: Cli, file: string, flag: string): string {
  const abs = path.resolve(cli.cwd, file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    throw new Exit(1, `waffle: cannot read ${flag} ${abs} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Fix: point ${flag} at a readable file`);
  }
  text = text.replace(/\r?\n$/, '');
  if (!text.trim()) throw new Exit(1, `waffle: ${flag} ${abs} is empty. Fix: write the value into it`);
  return text;
}

/** A repository given as a path becomes absolute (git runs elsewhere); URLs stay as they are. */
function repoLocation(cli: Cli, repo: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^:\s]+:/.test(repo)) return repo;
  return path.resolve(cli.cwd, repo);
}

async function runAgent(o: AgentFlags, cli: Cli): Promise<void> {
  if (!o.repo) throw new Exit(1, 'waffle: the agent needs the repository to follow. Fix: pass --repo <git url or path> (or set WAFFLE_AGENT_REPO)');
  const repo = repoLocation(cli, o.repo);
  const { githubRepoOf } = await import('../../runtime/agent/github-webhook.ts');
  const githubRepo = o.githubRepo ?? githubRepoOf(repo);
  if (o.githubRepo && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(o.githubRepo)) throw new Exit(1, `waffle: --github-repo takes owner/name, not "${o.githubRepo}"`);
  const webhookSecret = o.webhookSecretFile ? Buffer.from(readSecret(cli, o.webhookSecretFile, '--webhook-secret-file')) : undefined;
  if (webhookSecret && !githubRepo) {
    throw new Exit(1, `waffle: webhooks need the GitHub repository they come from, and ${repo} is not a GitHub URL. Fix: pass --github-repo owner/name`);
  }
  const token = o.tokenFile ? readSecret(cli, o.tokenFile, '--token-file') : undefined;
  const pollMs = parseDuration(o.poll, '--poll');
  const renewMs = parseDuration(o.renewEvery, '--renew-every');
  const keep = Number(o.keep);
  if (!Number.isInteger(keep) || keep < 1) throw new Exit(1, `waffle: --keep takes a whole number of deployments (at least 1), not "${o.keep}"`);
  const listen = parseListen(o.listen);
  const registrySecret = o.registrySecretFile ? readSecret(cli, o.registrySecretFile, '--registry-secret-file').trim() : undefined;
  const budget = parseBudget(o.restartBudget);
  const author = /^(.+?)\s*<([^<>\s]+@[^<>\s]+)>$/.exec(o.writeBackAuthor.trim());
  if (!author) throw new Exit(1, `waffle: --write-back-author takes "Name <email>", not "${o.writeBackAuthor}"`);
  if (o.chatFormat !== 'slack' && o.chatFormat !== 'discord') throw new Exit(1, `waffle: --chat-format takes slack or discord, not "${o.chatFormat}"`);

  const { stateRoot } = await import('../../runtime/secrets/state.ts');
  const stateDir = path.resolve(cli.cwd, cli.opts.stateDir ?? cli.env.WAFFLE_AGENT_STATE_DIR ?? stateRoot(cli.env));
  const own = path.join(stateDir, '_agent');
  fs.mkdirSync(own, { recursive: true, mode: 0o711 });
  // The evaluation runs as an unprivileged user and reads the checkout: the directories above it must
  // let it pass (search only, no listing); what is secret inside (per-project keys, history) stays 0700/0600.
  for (const dir of [stateDir, own]) {
    const mode = fs.statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o111);
  }

  const { parseHostPolicy, DEFAULT_HOST_POLICY } = await import('../../runtime/agent/policy.ts');
  let policy = DEFAULT_HOST_POLICY;
  if (o.hostPolicy) {
    const file = path.resolve(cli.cwd, o.hostPolicy);
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Exit(1, `waffle: --host-policy ${file}: ${(e as Error).message}. Fix: a JSON object such as {"bindRoots": ["/srv/data"], "dockerSocket": false, "hostPorts": [[8000, 8999]]}`);
    }
    try {
      policy = parseHostPolicy(json, file);
    } catch (e) {
      throw new Exit(1, `waffle: ${(e as Error).message}`);
    }
  }

  const log = (await import('../agent-log.ts')).agentLogger(cli.stderr, o.logFormat ? { json: o.logFormat === 'json' } : {});
  const { History } = await import('../../runtime/history/history.ts');
  // Every write to the history is also an event on the agent's stream (the page's live updates).
  const { AgentEvents, watchHistory } = await import('../../runtime/agent/page/stream.ts');
  const events = new AgentEvents();
  const history = watchHistory(History.open(path.join(own, 'history.sqlite'), { keep }), events);

  const notifiers = [];
  let githubAuth: { token: string } | { appId: string; privateKey: string; installationId: string } | undefined;
  if (githubRepo && (o.githubTokenFile || o.githubAppId)) {
    const { githubStatusNotifier } = await import('../../runtime/agent/notify/github.ts');
    let auth: { token: string } | { appId: string; privateKey: string; installationId: string };
    if (o.githubTokenFile) auth = { token: readSecret(cli, o.githubTokenFile, '--github-token-file') };
    else {
      if (!o.githubAppKeyFile || !o.githubAppInstallation) throw new Exit(1, 'waffle: a GitHub App needs --github-app-id, --github-app-key-file and --github-app-installation');
      auth = { appId: o.githubAppId!, privateKey: readSecret(cli, o.githubAppKeyFile, '--github-app-key-file'), installationId: o.githubAppInstallation };
    }
    notifiers.push(githubStatusNotifier({ repo: githubRepo, auth, ...(o.githubApiUrl ? { baseUrl: o.githubApiUrl } : {}) }));
    githubAuth = auth;
  }
  if (o.chatWebhookUrlFile) {
    const { chatNotifier } = await import('../../runtime/agent/notify/chat.ts');
    notifiers.push(chatNotifier({ url: readSecret(cli, o.chatWebhookUrlFile, '--chat-webhook-url-file').trim(), format: o.chatFormat as 'slack' | 'discord' }));
  }
  const { NotificationHub } = await import('../../runtime/agent/notify/notifier.ts');
  const hub = new NotificationHub(notifiers, { log, history });
  const { AgentMetrics } = await import('../../runtime/agent/metrics.ts');
  const metrics = new AgentMetrics();

  // The engine sees the operator's environment (Docker, Vault token, age identity) minus the agent's
  // own settings; the evaluation sandbox gives the repository none of it (only its allow-list).
  const env = Object.fromEntries(Object.entries(cli.env).filter(([k]) => !k.startsWith('WAFFLE_AGENT_')));
  const { Engine } = await import('../../runtime/engine.ts');
  const engine = new Engine({
    env,
    stateDir,
    // A commit with a problem must not leave the TypeScript parser in this long-running process.
    locateInChild: true,
    ...(cli.opts.dockerHost ? { dockerHost: cli.opts.dockerHost } : {}),
    ...(cli.opts.loadTimeout ? { loadTimeoutMs: Number(cli.opts.loadTimeout) } : {}),
    ...(cli.opts.allowEnv ? { allowEnv: cli.opts.allowEnv.split(',').map((n) => n.trim()).filter(Boolean) } : {}),
  });
  // The Docker socket this agent drives is refused as a bind source like the well-known ones.
  const dockerHost = engine.dockerHostFor();
  if (dockerHost.startsWith('unix://')) policy = { ...policy, dockerSockets: [...(policy.dockerSockets ?? []), dockerHost.slice('unix://'.length)] };
  const { Checkout } = await import('../../runtime/agent/checkout.ts');
  const checkout = new Checkout({
    repo,
    hostEnv: { ...(process.env.PATH ? { PATH: process.env.PATH } : {}), ...(process.env.HOME ? { HOME: process.env.HOME } : {}) },
    branch: o.branch,
    dir: path.join(own, 'checkout'),
    auth: {
      ...(o.gitTokenFile ? { token: readSecret(cli, o.gitTokenFile, '--git-token-file').trim() } : {}),
      ...(o.sshKeyFile ? { sshKeyFile: path.resolve(cli.cwd, o.sshKeyFile) } : {}),
      ...(o.knownHostsFile ? { knownHostsFile: path.resolve(cli.cwd, o.knownHostsFile) } : {}),
    },
  });
  const { Agent } = await import('../../runtime/agent/agent.ts');
  const { PollSource } = await import('../../runtime/agent/poll.ts');
  let agent!: InstanceType<typeof Agent>;
  const poll = new PollSource({ intervalMs: pollMs, checkout, log, known: () => agent.knownCommit, busy: () => agent.queue.length > 0 });
  // Image updates (registry hook, tag poll, write-back) and drift/crash repair.
  const { createAutomation } = await import('../../runtime/agent/automation.ts');
  const { connectDocker, dockerSettingsFromEnv } = await import('../../runtime/docker/client.ts');
  const { host: _dockerHost, ...dockerSettings } = dockerSettingsFromEnv(engine.env);
  const { PinStore } = await import('../../runtime/pins.ts');
  const automation = createAutomation({
    history,
    metrics,
    hub,
    log,
    env: engine.env,
    agent: () => ({ queue: agent.queue, knownCommit: agent.knownCommit, branch: agent.branch, ...(githubRepo ? { repo: githubRepo } : {}) }),
    budget,
    // A service `waffle rollback` pinned is neither updated nor restarted by the agent.
    pinned: (project, service) => new PinStore(project, engine.env).get(service) !== undefined,
    ...(registrySecret ? { registrySecret } : {}),
    ...(o.writeBack ? { writeBack: { repo, branch: o.branch, dir: path.join(own, 'write-back'), author: { name: author[1]!, email: author[2]! }, env: checkout.gitEnv() } } : {}),
    ...(o.repair ? { docker: await connectDocker(engine.dockerHostFor(), dockerSettings) } : {}),
  });
  agent = new Agent({
    engine,
    checkout,
    history,
    hub,
    metrics,
    log,
    policy,
    sources: [poll, ...automation.sources],
    hooks: automation.hooks,
    renewEveryMs: renewMs,
    ...(githubRepo ? { repo: githubRepo } : {}),
    ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
  });

  // Pull-request previews: they need GitHub to report to. They wait for deploys, and a deploy that
  // starts pauses the running one (it would plan against containers that are changing).
  let previews: InstanceType<typeof import('../../runtime/agent/preview/preview.ts').PreviewRunner> | undefined;
  if (o.previews && githubRepo && githubAuth) {
    const { PreviewRunner } = await import('../../runtime/agent/preview/preview.ts');
    const { PreviewWorkspace } = await import('../../runtime/agent/preview/workspace.ts');
    const { githubPreviewPublisher } = await import('../../runtime/agent/preview/github.ts');
    const { checkHostPolicy } = await import('../../runtime/agent/policy.ts');
    previews = new PreviewRunner({
      engine,
      workspace: new PreviewWorkspace({ dir: path.join(own, 'previews'), remote: repo, env: checkout.gitEnv() }),
      publisher: githubPreviewPublisher({ repo: githubRepo, auth: githubAuth, ...(o.githubApiUrl ? { baseUrl: o.githubApiUrl } : {}), state: history }),
      log,
      ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
      policy: (graph, dir) => checkHostPolicy(graph, policy, dir),
      deploysIdle: async () => {
        while (agent.queue.length > 0) await agent.queue.idle();
      },
      onRecord: (r) => events.publish({ type: 'preview', number: r.number, state: r.state }),
    });
    const runner = previews;
    events.subscribe((e) => {
      if (e.type === 'deployment' && e.state === 'running') runner.preempt();
    });
  }

  // The status page: the management token or the read-only page token, or open when asked.
  const pageToken = o.pageTokenFile ? readSecret(cli, o.pageTokenFile, '--page-token-file') : undefined;
  const { pageSource } = await import('../../runtime/agent/page/source.ts');
  let docker: ReturnType<typeof connectDocker> | undefined;
  const source = pageSource({
    status: () => agent.status(),
    history,
    docker: () => (docker ??= connectDocker(engine.dockerHostFor(agent.graph), (({ host: _h, ...rest }) => rest)(dockerSettingsFromEnv(engine.env))).catch((e) => {
      docker = undefined;
      throw e;
    })),
    domains: (name) => {
      const routes = (agent.graph?.services[name] as { routes?: Array<{ domain: string; path: string }> } | undefined)?.routes ?? [];
      return routes.map((r) => r.domain + (r.path === '/' ? '' : r.path));
    },
    ...(previews ? { previews } : {}),
  });
  const page = {
    access: { ...(token ? { token } : {}), ...(pageToken ? { readToken: pageToken } : {}), ...(o.pageOpen ? { open: true } : {}) },
    secure: !!o.publicUrl?.startsWith('https:'),
    source,
    events,
  };

  const { createServer } = await import('../../runtime/agent/server.ts');
  const server = await createServer({
    agent,
    history,
    metrics,
    log,
    ...(webhookSecret ? { webhookSecret } : {}),
    ...(token ? { token } : {}),
    ...(githubRepo ? { githubRepo } : {}),
    ...(previews ? { previews: { runner: previews, forks: !!o.previewForks } } : {}),
    page,
    ...(automation.registryHook ? { registryHook: automation.registryHook } : {}),
  });

  // The process's signals are the agent's: the first SIGTERM/SIGINT stops gracefully (the running
  // deploy finishes), the second interrupts the deploy (rolled back), the third leaves at once.
  cli.interrupt.dispose();
  let stops = 0;
  let stopped: Promise<void> | undefined;
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      stops++;
      if (stops === 1) {
        log.info('stopping: the running deploy finishes first (signal again to interrupt it)', { signal: sig });
        stopped = (async () => {
          await server.close().catch(() => undefined);
          await previews?.close();
          await agent.stop();
          history.close();
          log.info('stopped');
        })().finally(resolve);
      } else if (stops === 2) {
        log.warn('interrupting the running deploy: what is in flight rolls back', { signal: sig });
        agent.abort();
      } else process.exit(130);
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });

  const address = await server.listen(listen.host, listen.port);
  log.info('agent listening', { address, repo: redact(repo), branch: o.branch, githubRepo, stateDir, poll: pollMs, notifiers: notifiers.map((n) => n.name) });
  try {
    await agent.start();
  } catch (e) {
    log.error('cannot start: the checkout failed', { error: (e as Error).message });
    await server.close().catch(() => undefined);
    await previews?.close().catch(() => undefined);
    await agent.stop().catch(() => undefined);
    history.close();
    throw new Exit(1, `waffle: ${(e as Error).message}`);
  }
  await done;
  await stopped;
}

function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/]+@/i, '$1***@');
}

export function register(program: Command, app: App): void {
  const agent = program
    .command('agent')
    .description('run headless: deploy every push to a branch, report back (webhooks, poll, status API)')
    .addOption(new Option('--repo <url-or-path>', 'the source-of-truth repository (https, ssh or a path)').env('WAFFLE_AGENT_REPO'))
    .addOption(new Option('--github-repo <owner/name>', 'GitHub repository whose webhooks are accepted (default: from a GitHub --repo URL)').env('WAFFLE_AGENT_GITHUB_REPO'))
    .addOption(new Option('--branch <name>', 'branch to deploy').env('WAFFLE_AGENT_BRANCH').default('main'))
    .addOption(new Option('--listen <host:port>', 'address of the HTTP server').env('WAFFLE_AGENT_LISTEN').default('127.0.0.1:8787'))
    .addOption(new Option('--webhook-secret-file <file>', 'file holding the GitHub webhook secret (webhooks are off without it)').env('WAFFLE_AGENT_WEBHOOK_SECRET_FILE'))
    .addOption(new Option('--token-file <file>', 'file holding the management API bearer token (the API is off without it)').env('WAFFLE_AGENT_TOKEN_FILE'))
    .addOption(new Option('--poll <duration>', 'how often to ask git for the branch head (0 = never)').env('WAFFLE_AGENT_POLL').default('60s'))
    .addOption(new Option('--git-token-file <file>', 'HTTPS clone: file holding a token (sent as basic auth x-access-token)').env('WAFFLE_AGENT_GIT_TOKEN_FILE'))
    .addOption(new Option('--ssh-key-file <file>', 'SSH clone: private key file').env('WAFFLE_AGENT_SSH_KEY_FILE'))
    .addOption(new Option('--known-hosts-file <file>', 'SSH clone: known_hosts file (default: accept a new host key once)').env('WAFFLE_AGENT_KNOWN_HOSTS_FILE'))
    .addOption(new Option('--github-token-file <file>', 'commit statuses: file holding a GitHub token').env('WAFFLE_AGENT_GITHUB_TOKEN_FILE'))
    .addOption(new Option('--github-app-id <id>', 'commit statuses through a GitHub App: its id').env('WAFFLE_AGENT_GITHUB_APP_ID'))
    .addOption(new Option('--github-app-key-file <file>', 'the GitHub App private key (PEM)').env('WAFFLE_AGENT_GITHUB_APP_KEY_FILE'))
    .addOption(new Option('--github-app-installation <id>', 'the GitHub App installation id').env('WAFFLE_AGENT_GITHUB_APP_INSTALLATION'))
    .addOption(new Option('--github-api-url <url>', 'GitHub API base URL (GitHub Enterprise)').env('WAFFLE_AGENT_GITHUB_API_URL'))
    .addOption(new Option('--chat-webhook-url-file <file>', 'file holding a Slack or Discord incoming webhook URL').env('WAFFLE_AGENT_CHAT_WEBHOOK_URL_FILE'))
    .addOption(new Option('--chat-format <format>', 'slack or discord').env('WAFFLE_AGENT_CHAT_FORMAT').default('slack'))
    .addOption(new Option('--public-url <url>', 'URL people reach this agent at (links in statuses and messages)').env('WAFFLE_AGENT_PUBLIC_URL'))
    .addOption(new Option('--host-policy <file>', 'JSON: what definitions may do on this host (bind roots, Docker socket, host ports)').env('WAFFLE_AGENT_HOST_POLICY'))
    .addOption(new Option('--keep <n>', 'deployments kept in the history').env('WAFFLE_AGENT_KEEP').default('500'))
    .addOption(new Option('--renew-every <duration>', 'how often due Vault leases are renewed (0 = never)').env('WAFFLE_AGENT_RENEW_EVERY').default('60s'))
    .addOption(new Option('--no-previews', 'do not plan pull requests (on by default when GitHub statuses are set up)').env('WAFFLE_AGENT_NO_PREVIEWS'))
    .addOption(new Option('--preview-forks', "also preview pull requests from forks (their code runs in the agent's sandboxed evaluation)").env('WAFFLE_AGENT_PREVIEW_FORKS'))
    .addOption(new Option('--page-token-file <file>', 'file holding a read-only token for the status page (the management token opens it too)').env('WAFFLE_AGENT_PAGE_TOKEN_FILE'))
    .addOption(new Option('--page-open', 'the status page needs no token (put the agent behind a VPN or a proxy that authenticates)').env('WAFFLE_AGENT_PAGE_OPEN'))
    .addOption(new Option('--registry-secret-file <file>', 'file holding the shared secret of POST /hooks/registry (registry push notifications; off without it)').env('WAFFLE_AGENT_REGISTRY_SECRET_FILE'))
    .addOption(new Option('--write-back', 'commit tags deployed by an update policy into the service file and push them').env('WAFFLE_AGENT_WRITE_BACK'))
    .addOption(new Option('--write-back-author <author>', 'author of write-back commits, "Name <email>"').env('WAFFLE_AGENT_WRITE_BACK_AUTHOR').default('waffle agent <waffle-agent@localhost>'))
    .addOption(new Option('--restart-budget <n/window>', 'restarts of a crashing service allowed per window before the agent stops trying').env('WAFFLE_AGENT_RESTART_BUDGET').default('5/5m'))
    .addOption(new Option('--no-repair', 'do not follow Docker events: no crash restarts, no drift repair').env('WAFFLE_AGENT_NO_REPAIR'))
    .addOption(new Option('--log-format <format>', 'json or text (default: json unless stderr is a terminal)').env('WAFFLE_AGENT_LOG_FORMAT').choices(['json', 'text']))
    .action(async (o: AgentFlags, cmd: Command) => {
      // Global options after `agent` reach the root; the agent's own are read here.
      await runAgent(o, cliOf(cmd, app));
    });

  clientOptions(
    agent
      .command('deploy')
      .description('ask a running agent to deploy the branch head (or one commit on the branch), and wait for the result')
      .option('--commit <sha>', 'deploy this commit (it must be on the branch)')
      .option('--no-wait', 'return once the deploy is queued'),
  ).action(async (_o: unknown, cmd: Command) => {
    // `agent` declares --token-file too: whichever command parsed it, the merged options hold it.
    const o = cmd.optsWithGlobals() as ClientOptions & { commit?: string; wait: boolean };
    const cli = cliOf(cmd, app);
    const queued = await agentRequest<{ deployment: string; status: string }>(cli, o, 'POST', '/deployments', o.commit ? { commit: o.commit } : {});
    if (!o.wait) {
      if (cli.mode === 'json') cli.out(JSON.stringify(queued) + '\n');
      else cli.err(`deployment ${queued.deployment} ${queued.status === 'coalesced' ? 'joined the waiting deploy' : 'queued'}`);
      return;
    }
    if (cli.mode !== 'json') cli.err(`deployment ${queued.deployment} ${queued.status === 'coalesced' ? 'joined the waiting deploy' : 'queued'}; waiting for it`);
    const { formatDeployment } = await import('./history.ts');
    for (;;) {
      const row = await agentRequest<{ state: string; error?: string }>(cli, o, 'GET', `/deployments/${encodeURIComponent(queued.deployment)}`);
      if (row.state !== 'queued' && row.state !== 'running') {
        if (cli.mode === 'json') cli.out(JSON.stringify(row) + '\n');
        else cli.out(formatDeployment(row as never));
        if (row.state === 'failed' || row.state === 'interrupted') throw new Exit(1);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
      if (cli.interrupt.signal.aborted) throw new Exit(130);
    }
  });
}
