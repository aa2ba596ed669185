// Run one tool of the mcp-tasks server as a task with the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.32, protocol 2025-11-25) over streamable HTTP.
//
//   npm ci --prefix examples/typescript
//   fastmcp run server.py --transport http --port 8000 &
//   node examples/typescript/progress_client.mjs http://127.0.0.1:8000/mcp sleep '{"seconds": 10}'
//
// `client.experimental.tasks.callToolStream` sends a task-augmented tools/call and yields
// `taskCreated`, then a `taskStatus` per tasks/get poll, then the `result` (or an `error`);
// progress notifications arrive on the call's own progress token. Ctrl-C sends tasks/cancel:
// the stream's next poll sees `cancelled` and ends. Status lines go to stderr, the result to
// stdout; exit 0 = completed, 130 = cancelled, 1 = anything else.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

const [url = 'http://127.0.0.1:8000/mcp', tool = 'count_primes', args = '{"below": 3000000}'] =
    process.argv.slice(2);
const say = line => process.stderr.write(`${line}\n`);

function bar({ progress, total, message }) {
    const width = 30;
    const filled = total ? Math.round((progress / total) * width) : 0;
    const percent = total ? `${Math.round((progress / total) * 100)}%` : `${progress}`;
    say(`[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${percent} ${message ?? ''}`);
}

const client = new Client({ name: 'mcp-tasks-example', version: '0.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);

let taskId;
let cancelling; // the tasks/cancel in flight, awaited before exiting
process.on('SIGINT', () => {
    if (!taskId || cancelling) return;
    say('cancelling: tasks/cancel');
    cancelling = client.experimental.tasks
        .cancelTask(taskId)
        .then((task) => say(`tasks/cancel answered: task ${task.taskId} ${task.status}`))
        .catch((error) => say(`tasks/cancel failed: ${error.message}`));
});

let status = 'unknown';
let lastStatus;
const stream = client.experimental.tasks.callToolStream(
    { name: tool, arguments: JSON.parse(args) },
    CallToolResultSchema,
    { task: { ttl: 600_000 }, onprogress: bar }
);
for await (const message of stream) {
    if (message.type === 'taskCreated') {
        taskId = message.task.taskId;
        say(`task ${taskId} created (${transport.protocolVersion}); Ctrl-C cancels it`);
    } else if (message.type === 'taskStatus') {
        status = message.task.status;
        const line = `status: ${status}${message.task.statusMessage ? ` - ${message.task.statusMessage}` : ''}`;
        if (line !== lastStatus) say((lastStatus = line));
    } else if (message.type === 'result') {
        status = 'completed';
        const { structuredContent, content } = message.result;
        process.stdout.write(`${JSON.stringify(structuredContent ?? content, null, 2)}\n`);
    } else if (message.type === 'error') {
        say(`error: ${message.error.message}`);
    }
}
say(`task ${taskId} ${status}`);
await cancelling; // the stream can end (cancelled) before the cancel's own answer arrives
await transport.terminateSession().catch(() => {});
await client.close();
process.exit(status === 'completed' ? 0 : status === 'cancelled' ? 130 : 1);
