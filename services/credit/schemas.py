"""Request and response bodies of the credit service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from shared.money import Currency
from shared.schemas import RequestModel, ResponseModel

Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, Field(max_length=40, pattern=r"^[0-9+()\-. ]{3,40}$")]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class ContactRole(StrEnum):
    finance = "finance"
    decision_maker = "decision_maker"
    key_person = "key_person"
    auditor = "auditor"
    user = "user"
    barrier = "barrier"
    general_manager = "general_manager"


class Contact(RequestModel):
    name: Text200
    role: ContactRole
    email: Email | None = None
    phone: Phone | None = None


class BankAccount(RequestModel):
    bank: Text200
    account_no: Annotated[str, Field(min_length=1, max_length=64)]
    currency: Currency | None = None


class CustomerCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Shenzhen Brightway Electronics Co., Ltd.",
        "registration_no": "91440300MA5F000001",
        "salesperson_id": "S-ALICE",
        "address": "88 Keji Road, Nanshan, Shenzhen",
        "contacts": [
            {"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"},
            {"name": "Wang Wei", "role": "general_manager", "phone": "+86 755 0000 0000"},
        ],
        "bank_accounts": [{"bank": "Bank of China Shenzhen", "account_no": "7440000000001",
                           "currency": "CNY"}],
    }]})

    name: Text200
    registration_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    salesperson_id: SalespersonId | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] = []
    bank_accounts: Annotated[list[BankAccount], Field(max_length=20)] = []


class CustomerUpdate(RequestModel):
    """Fields to change; absent fields stay as they are. Lists replace the whole list."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"address": "1 New Street"}]})

    name: Text200 | None = None
    registration_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    salesperson_id: SalespersonId | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] | None = None
    bank_accounts: Annotated[list[BankAccount], Field(max_length=20)] | None = None


class CustomerPublic(ResponseModel):
    id: str
    number: str
    name: str
    registration_no: str | None
    salesperson_id: str | None
    address: str | None
    contacts: list[Contact]
    bank_accounts: list[BankAccount]
    version: int
    created_at: datetime
    updated_at: datetime
