import { defineConfig } from 'wafflemaker';

export default defineConfig({
  // Prefixes every container, network and volume of this repository, and labels them.
  project: '__PROJECT__',
  // Files that hold one service each (default export of defineService).
  services: ['services/*.ts'],
  defaults: {
    restart: 'unless-stopped',
  },
});
