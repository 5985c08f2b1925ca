"""`/usage` for members and the `/quota` admin group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidRequest
from bot.i18n import Msg, msg, t
from bot.i18n.translator import user_locale
from bot.providers.catalog import ALL_RESOLUTIONS, MODELS, TEXT_TO_IMAGE_MODELS
from bot.quota.policy import Limit, Period, Source, parse_limit
from bot.quota.service import Usage, guild_key

if TYPE_CHECKING:
    from bot.client import ImageBot

MAX_GRANT = 1_000_000


def role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    return tuple(r.id for r in user.roles if not r.is_default()) if isinstance(user, discord.Member) else ()


def source_text(limit: Limit) -> Msg:
    if limit.source is Source.ROLE:
        return msg("quota.source_role", role=f"<@&{limit.role_id}>")
    return msg(
        {Source.USER: "quota.source_user", Source.GUILD: "quota.source_guild", Source.BOT: "quota.source_bot"}[
            limit.source
        ]
    )


def limit_text(limit: Limit) -> Msg:
    """ "5 per day" / "每天 5 积分" """
    if limit.credits is None:
        return msg("quota.limit_unlimited", per=limit.period.per)
    return msg("quota.limit", credits=limit.credits, per=limit.period.per)


def usage_text(usage: Usage, who: Msg, locale: str) -> str:
    """What a member has left, where the limit comes from, and when credits come back."""
    when = int(usage.resets_at.timestamp())
    source = source_text(usage.limit)
    if usage.remaining is None:
        head = t(locale, "usage.unlimited", who=who, source=source, used=usage.used, period=usage.limit.period.this)
    else:
        bonus = msg("usage.bonus", bonus=usage.bonus) if usage.bonus else ""
        head = t(
            locale,
            "usage.left",
            who=who,
            count=usage.remaining,
            limit=limit_text(usage.limit),
            source=source,
            used=usage.used,
            bonus=bonus,
        )
    return head + "\n" + t(locale, "usage.resets", when=when)


STATE_KEYS: dict[str, str] = {
    "preparing": "state.preparing",
    "queued": "state.queued",
    "submitted": "state.submitted",
    "running": "state.running",
    "succeeded": "state.succeeded",
    "failed": "state.failed",
    "timed_out": "state.timed_out",
    "cancelled": "state.cancelled",
}


def parse_limit_option(text: str) -> int | None:
    try:
        return parse_limit(text)
    except ValueError:
        raise InvalidRequest("quota.bad_limit") from None


def guild_of(interaction: discord.Interaction[ImageBot]) -> int:
    if interaction.guild_id is None:
        raise InvalidRequest("quota.server_only")
    return interaction.guild_id


admin_only = app_commands.checks.has_permissions(manage_guild=True)


LIMIT_HELP = "Credits per period: a number, 'unlimited', or 'clear' to remove this limit"
PERIOD_HELP = "How often the credits come back: day, week or month (default: the bot's period)"


class Quota(commands.Cog):
    """Credits: what members have left, and what admins allow."""

    quota = app_commands.Group(
        name="quota",
        description="Manage image credits (server admins)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    set_limit = app_commands.Group(name="set", description="Set a member's or a role's limit", parent=quota)

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @app_commands.command(name="usage", description="Your image credits: what's left, and when they come back")
    async def usage(self, interaction: discord.Interaction[ImageBot]) -> None:
        quota = self.bot.quota
        locale = user_locale(interaction)
        usage = await quota.usage(self.bot.db, interaction.guild_id, interaction.user.id, role_ids(interaction.user))
        lines = [usage_text(usage, msg("usage.who_you"), locale)]
        recent = await quota.recent_jobs(interaction.guild_id, interaction.user.id)
        if recent:
            lines.append("\n" + t(locale, "usage.recent"))
            for job in recent:
                parts = [
                    f"#{job.id}",
                    MODELS[job.model].label if job.model in MODELS else job.model,
                    t(locale, STATE_KEYS[job.state]) if job.state in STATE_KEYS else job.state,
                    t(locale, "credits.count", count=job.cost)
                    + (t(locale, "usage.given_back") if job.refunded else ""),
                ]
                if job.provider_cost is not None:
                    parts.append(t(locale, "usage.service_cost", cost=f"{job.provider_cost:g}"))
                lines.append(" · ".join([*parts, f"<t:{int(job.created_at)}:R>"]))
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @set_limit.command(name="user", description="Set one member's credit limit")
    @app_commands.describe(
        member="The member whose limit to set",
        limit=LIMIT_HELP,
        period=PERIOD_HELP,
    )
    @admin_only
    async def set_user(
        self,
        interaction: discord.Interaction[ImageBot],
        member: discord.Member,
        limit: str,
        period: Period | None = None,
    ) -> None:
        await self._set(interaction, "user", member.id, member.mention, limit, period)

    @set_limit.command(name="role", description="Set the credit limit for members with a role")
    @app_commands.describe(
        role="Members with this role get this limit",
        limit=LIMIT_HELP,
        period=PERIOD_HELP,
    )
    @admin_only
    async def set_role(
        self, interaction: discord.Interaction[ImageBot], role: discord.Role, limit: str, period: Period | None = None
    ) -> None:
        await self._set(interaction, "role", role.id, role.mention, limit, period)

    @quota.command(name="default", description="Set the server's default credit limit")
    @app_commands.describe(
        limit=LIMIT_HELP,
        period=PERIOD_HELP,
    )
    @admin_only
    async def set_default(
        self, interaction: discord.Interaction[ImageBot], limit: str, period: Period | None = None
    ) -> None:
        guild = guild_of(interaction)
        await self._set(interaction, "guild", guild, t(user_locale(interaction), "quota.source_guild"), limit, period)

    async def _set(
        self,
        interaction: discord.Interaction[ImageBot],
        scope: str,
        target: int,
        label: str,
        limit: str,
        period: Period | None,
    ) -> None:
        guild = guild_of(interaction)
        clear = limit.strip().lower() == "clear"
        credits = None if clear else parse_limit_option(limit)
        old, new = await self.bot.quota.set_limit(
            guild, interaction.user.id, scope, target, credits, period, clear=clear
        )
        answer = t(user_locale(interaction), "quota.limit_set", target=label, old=old, new=new)
        await interaction.response.send_message(answer, ephemeral=True)

    @quota.command(name="grant", description="Give a member one-off bonus credits (kept until used)")
    @app_commands.describe(member="Who gets the bonus credits", credits="How many bonus credits to give")
    @admin_only
    async def grant(
        self,
        interaction: discord.Interaction[ImageBot],
        member: discord.Member,
        credits: app_commands.Range[int, 1, MAX_GRANT],
    ) -> None:
        balance = await self.bot.quota.grant(guild_of(interaction), interaction.user.id, member.id, credits)
        answer = t(user_locale(interaction), "quota.granted", member=member.mention, count=credits, balance=balance)
        await interaction.response.send_message(answer, ephemeral=True)

    @quota.command(name="reset", description="Zero a member's usage for the current period")
    @app_commands.describe(member="Whose usage to zero")
    @admin_only
    async def reset(self, interaction: discord.Interaction[ImageBot], member: discord.Member) -> None:
        was = await self.bot.quota.reset_user(guild_of(interaction), interaction.user.id, member.id, role_ids(member))
        answer = t(user_locale(interaction), "quota.reset", member=member.mention, count=was)
        await interaction.response.send_message(answer, ephemeral=True)

    @quota.command(name="show", description="A member's credits, and the recent quota changes in this server")
    @app_commands.describe(member="Whose credits to show")
    @admin_only
    async def show(self, interaction: discord.Interaction[ImageBot], member: discord.Member) -> None:
        guild = guild_of(interaction)
        locale = user_locale(interaction)
        usage = await self.bot.quota.usage(self.bot.db, guild, member.id, role_ids(member))
        lines = [usage_text(usage, msg("usage.who_member", member=member.mention), locale)]
        entries = await self.bot.quota.audit_log(guild)
        if entries:
            lines.append("\n" + t(locale, "audit.recent"))
            lines += [
                f"<t:{int(e.created_at)}:R> <@{e.actor_id}> {e.action} `{e.target}`: {e.old_value} → {e.new_value}"
                for e in entries
            ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @quota.command(name="cost", description="Set what one image of a model (and resolution) costs here")
    @app_commands.describe(
        model="The model family",
        credits="Credits one image costs (0 makes it free)",
        resolution="Only at this resolution (default: every resolution without its own price)",
    )
    @app_commands.choices(
        model=[app_commands.Choice(name=MODELS[m].label, value=m) for m in TEXT_TO_IMAGE_MODELS],
        resolution=[app_commands.Choice(name=r, value=r) for r in ALL_RESOLUTIONS],
    )
    @admin_only
    async def cost(
        self,
        interaction: discord.Interaction[ImageBot],
        model: str,
        credits: app_commands.Range[int, 0, 1000],
        resolution: str | None = None,
    ) -> None:
        key = f"{model}:{resolution}" if resolution else model
        old, new = await self.bot.quota.set_cost(guild_of(interaction), interaction.user.id, key, credits)
        locale = user_locale(interaction)
        label = MODELS[model].label
        answer = (
            t(locale, "quota.cost_set_resolution", model=label, resolution=resolution, count=new, old=old)
            if resolution
            else t(locale, "quota.cost_set", model=label, count=new, old=old)
        )
        await interaction.response.send_message(answer, ephemeral=True)

    @quota.command(name="top", description="Who used the most credits this period")
    @admin_only
    async def top(self, interaction: discord.Interaction[ImageBot]) -> None:
        rows = await self.bot.quota.top(guild_key(guild_of(interaction)))
        locale = user_locale(interaction)
        text = "\n".join(
            t(locale, "quota.top_line", rank=i, user=f"<@{user}>", count=used) for i, (user, used) in enumerate(rows, 1)
        )
        await interaction.response.send_message(text or t(locale, "quota.top_empty"), ephemeral=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Quota(bot))
