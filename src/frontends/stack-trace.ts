/**
 * The innermost frame of the user's own code in a Python stack trace PyTorch recorded, skipping frames inside
 * torch itself: `model.py:42 in forward: x = F.relu(self.fc1(x))`.
 */
export function userSourceLocation(stackTrace: string | undefined): string | undefined {
  if (!stackTrace) return undefined;
  // nodes from one source line share their trace: remember the last few
  const hit = recent.get(stackTrace);
  if (hit !== undefined) return hit ?? undefined;
  const found = findUserFrame(stackTrace);
  if (recent.size > 256) recent.clear();
  recent.set(stackTrace, found ?? null);
  return found;
}

const recent = new Map<string, string | null>();

function findUserFrame(stackTrace: string): string | undefined {
  const frames: { file: string; line: string; fn: string; code: string }[] = [];
  const re = /File "([^"]+)", line (\d+), in ([^\n]+)\n\s*([^\n]*)/g;
  for (let m = re.exec(stackTrace); m; m = re.exec(stackTrace)) {
    frames.push({ file: m[1], line: m[2], fn: m[3].trim(), code: m[4].trim() });
  }
  const isLibrary = (f: string) =>
    /[/\\](torch|timm|torchvision|transformers)[/\\]/.test(f) && /site-packages|dist-packages/.test(f);
  const user = [...frames].reverse().find((f) => !isLibrary(f.file)) ?? frames[frames.length - 1];
  if (!user) return undefined;
  const short = user.file.split(/[/\\]/).slice(-2).join("/");
  return `${short}:${user.line} in ${user.fn}${user.code ? `: ${user.code}` : ""}`;
}

/** `blocks.1.0.conv_dw` from PyTorch's nn_module_stack metadata (`key,path,type;key,path,type`). */
export function modulePathFromStack(nnModuleStack: string | undefined): string | undefined {
  if (!nnModuleStack) return undefined;
  const entries = nnModuleStack.split(";");
  const last = entries[entries.length - 1];
  const path = last?.split(",")[1];
  return path ? path : undefined;
}
