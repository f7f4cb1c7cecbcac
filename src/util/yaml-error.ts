/**
 * A YAML parser's message quotes the offending line under a blank line (`…at line 3, column 44:\n\n
 * user: {token: …}\n ^`). In a credentials file (a kubeconfig) that line may hold a token or a key,
 * so only the text before the quote is kept: the reason and the position.
 */
export function withoutQuotedLines(message: string): string {
  return message.split(/\r?\n\s*\r?\n/)[0]!.replace(/:\s*$/, "").trim();
}
