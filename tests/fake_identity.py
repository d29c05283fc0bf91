"""A stand-in for the province's identity provider (see webui/identity.py): it "authenticates"
whoever the callback names when the shared secret matches — enough to prove the hook works."""

from flask import Flask, Request

from engine.errors import NotSignedIn


class FakeProvince:
    title = "使用省统一身份认证登录"

    def start(self, next_url: str) -> str:
        return f"https://idp.example.gov.cn/authorize?redirect_uri={next_url}"

    def finish(self, request: Request) -> str:
        if request.args.get("secret") != "s3cret":
            raise NotSignedIn("统一身份认证未通过")
        return request.args["user"]


def create_provider(app: Flask) -> FakeProvince:
    return FakeProvince()
