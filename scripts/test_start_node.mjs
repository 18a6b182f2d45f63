// A node:test reporter added by scripts/test.mjs beside the spec reporter: prints a mark when a
// test is about to run, so that the runner can name the test that is running when a phase must
// be stopped. (Node forwards a file's events as its test process reports them: best effort.)
const MARK = "::wsport-test-start::";

export default async function* startMarks(source) {
  for await (const event of source) {
    if (event.type === "test:dequeue" && event.data.nesting === 0 && event.data.name !== event.data.file) {
      yield `${MARK}${event.data.file ?? ""}\t${event.data.name}\n`;
    }
  }
}
