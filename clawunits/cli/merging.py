"""Commands that take a worktree session's work further: merge and pr."""

from __future__ import annotations

import click

from clawunits.cli.common import agent_option, emit, get_service, json_option


@click.command()
@click.argument("session")
@click.option("--squash", is_flag=True, help="One commit on the target instead of a merge commit.")
@click.option("--into", metavar="BRANCH", help="The local branch to merge into (default: the session's base).")
@click.option("--resolve", is_flag=True, help="On a conflict, launch a session that resolves it in the worktree.")
@click.option("--instructions", metavar="TEXT", help="With --resolve: added to the resolving session's prompt.")
@click.option("--channel", help="With --resolve: the chat channel (channel|target) the resolving session reports to.")
@agent_option
@json_option
@click.pass_context
def merge(
    ctx: click.Context,
    session: str,
    squash: bool,
    into: str | None,
    resolve: bool,
    instructions: str | None,
    channel: str | None,
    agent: str | None,
    as_json: bool,
) -> None:
    """Merge a finished worktree session's branch into its base (or --into BRANCH).

    Work the session left uncommitted is committed on its branch first. On a conflict, or when the target's
    checkout has uncommitted changes, nothing changes. After the merge the worktree and branch are removed if
    merged and clean.
    """
    from clawunits import render

    if instructions is not None and not resolve:
        raise click.UsageError("--instructions needs --resolve")
    res = get_service(ctx).merge(
        session, squash=squash, into=into, resolve=resolve, agent=agent, channel=channel, instructions=instructions
    )
    text = render.merged(res)
    emit(as_json, {**res.to_json(), "message": text}, text)


@click.command()
@click.argument("session")
@click.option("--base", metavar="BRANCH", help="The branch the pull request goes into (default: the session's base).")
@click.option("--remote", metavar="NAME", help="The remote to push to (default: origin, or the only one).")
@click.option("--draft", is_flag=True, help="Open it as a draft.")
@agent_option
@json_option
@click.pass_context
def pr(
    ctx: click.Context,
    session: str,
    base: str | None,
    remote: str | None,
    draft: bool,
    agent: str | None,
    as_json: bool,
) -> None:
    """Push a worktree session's branch and open a pull request with gh (GitHub CLI).

    The title comes from the session's prompt, the body from its prompt and final summary.
    """
    from clawunits import render

    res = get_service(ctx).pull_request(session, base=base, remote=remote, draft=draft, agent=agent)
    text = render.pull_request(res)
    emit(as_json, {**res.to_json(), "message": text}, text)
