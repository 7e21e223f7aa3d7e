"""China's calendar day.

Rounds, quarantines, temperature checks and passages are counted by the day
on the wall clocks of the people doing them: China Standard Time (UTC+8,
the IANA zone Asia/Shanghai; no daylight saving since 1991), whatever the
server's own time zone. A temperature taken at 07:30 on the 6th in Beijing
is the 6th's, although it is still the 5th in UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

CHINA_TZ_NAME = "Asia/Shanghai"
CHINA_TZ = ZoneInfo(CHINA_TZ_NAME)


def local_today(now: dt.datetime | None = None) -> dt.date:
    """The date in China at ``now`` (default: this instant)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(CHINA_TZ).date()


def as_china_time(moment: dt.datetime) -> dt.datetime:
    """``moment`` with China Standard Time assumed when it carries no offset."""
    return moment.replace(tzinfo=CHINA_TZ) if moment.tzinfo is None else moment
