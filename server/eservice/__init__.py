"""Electronic service (电子送达, 人民法院在线诉讼规则 Arts. 29–32): the channels a served
document reaches its recipient through (the platform inbox, email, a text-message notice)
and the SMS gateway behind the notice.

What a service is and how its state moves lives in :mod:`server.services.e_service`;
the job that delivers through these channels, and tries again, in
:mod:`server.jobs.deliver`.
"""
