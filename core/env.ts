// `${VAR}`, `${VAR:-default}` and `${VAR:?message}` substitution, applied to
// the scalar values of the parsed YAML so that errors keep their positions.
// `$${` writes a literal `${`.

export class EnvError extends Error {}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g;

export function hasEnvRef(text: string): boolean {
  return text.includes('${');
}

/** Substitutes references in `text`; throws EnvError naming the first missing variable. */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(REF, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (whole === '$${') return '${';
    const value = env[name!];
    const unset = value === undefined || value === '';
    if (op === ':-') return unset ? arg! : value!;
    if (op === ':?') {
      if (unset) throw new EnvError(`environment variable ${name} is required: ${arg || 'not set'}`);
      return value!;
    }
    if (value === undefined) throw new EnvError(`environment variable ${name} is not set (write \${${name}:-default} to give a default)`);
    return value;
  });
}
