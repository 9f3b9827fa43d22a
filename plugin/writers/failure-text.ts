// The alarm's words about a chart's failed units, carried by chart labels that the alarm text
// expands (health.d/systemdunits.conf). The agent expands them again whenever a label changes and
// writes the text it has at a status change into that notification, so the labels must say, at
// each moment, what a notification sent then should say: which units failed and what to do while
// any is failed; which units recovered once none is (the CLEAR notification).

/** How many recovered units the summary names before it says "and N more", in how many characters. */
const MAX_NAMED = 10;
const MAX_CHARS = 600;
/** Failed units remembered per failure episode (names only): bounded, whatever a storm brings. */
const MAX_REMEMBERED = 1000;

/** What to do while units are failed. No commas or semicolons: the agent turns them into . and :. */
export const FAILED_ADVICE = 'run systemctl status and journalctl -u on each - fix the cause - then systemctl restart it';
export const RECOVERED_ADVICE = 'no unit of this chart is failed now';
export const NONE_SUMMARY = 'none failed';
export const NONE_ADVICE = 'nothing to do';

export interface FailureLabels {
  /** `failed: a.socket (exit-code); b.socket (resources)`, `recovered: a.socket; b.socket`, or `none failed`. */
  readonly summary: string;
  readonly advice: string;
}

/**
 * One chart's failure episode: from the first sample that reports a unit failed to the first that
 * reports none, the names of every unit reported failed in it.
 */
export class FailureText {
  private readonly episode = new Set<string>();
  private failing = false;

  /**
   * The labels for this sample. `failed` are the shown names of the units the sample reports
   * failed, `failedLabel` the failed_units label made of them (with their reasons).
   */
  next(failed: readonly string[], failedLabel: string): FailureLabels {
    if (failed.length > 0) {
      if (!this.failing) this.episode.clear();
      this.failing = true;
      for (const name of failed) if (this.episode.size < MAX_REMEMBERED) this.episode.add(name);
      return { summary: `failed: ${failedLabel}`, advice: FAILED_ADVICE };
    }
    this.failing = false;
    if (this.episode.size === 0) return { summary: NONE_SUMMARY, advice: NONE_ADVICE };
    let text = '';
    let shown = 0;
    for (const name of this.episode) {
      if (shown === MAX_NAMED || (shown > 0 && text.length + name.length + 2 > MAX_CHARS)) break;
      text += (shown++ ? '; ' : '') + name;
    }
    const more = this.episode.size - shown;
    return { summary: `recovered: ${text}${more > 0 ? `; and ${more} more` : ''}`, advice: RECOVERED_ADVICE };
  }
}
