/** @jsxImportSource . */
/** Pre-fitted lines of text, one <Text> each, truncated (never wrapped) should the terminal be narrower. */
import { ink } from './deps.ts';

export function Lines({ lines }: { lines: string[] }) {
  const { Box, Text } = ink;
  return (
    <Box flexDirection="column">
      {lines.map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {l === '' ? ' ' : l}
        </Text>
      ))}
    </Box>
  );
}
