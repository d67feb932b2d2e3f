// A NestJS application whose gateways run on polysio: Nest's own IoAdapter, with polysio's
// Server in place of socket.io's (`PolysioAdapter`), on the application's port. Checked by
// `tsc` and run by node/test/nest.test.js; README "NestJS" shows it.
import "reflect-metadata";
import { Controller, Get, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { IoAdapter } from "@nestjs/platform-socket.io";
import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from "@nestjs/websockets";
import { Namespace, Server, Socket } from "polysio";

/** Nest's socket.io adapter, serving the gateways with polysio. */
export class PolysioAdapter extends IoAdapter {
  override createIOServer(port: number, options?: any): any {
    // Gateways without a port of their own share the application's http.Server.
    return this.httpServer && port === 0 ? new Server(this.httpServer, options) : new Server(port, options);
  }
}

@WebSocketGateway({ namespace: "chat", cors: { origin: "*" } })
export class ChatGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  @WebSocketServer() server!: Namespace;

  afterInit(nsp: Namespace) {
    nsp.use((socket, next) => (socket.handshake.auth.name ? next() : next(new Error("a name, please"))));
  }

  handleConnection(client: Socket) {
    client.data.name = client.handshake.auth.name;
  }

  handleDisconnect(client: Socket) {
    console.log(`${client.data.name} left`);
  }

  /** The value returned is the ack. */
  @SubscribeMessage("join")
  join(@ConnectedSocket() client: Socket, @MessageBody() room: string) {
    client.join(room);
    return { joined: room };
  }

  @SubscribeMessage("say")
  say(@ConnectedSocket() client: Socket, @MessageBody() body: { room: string; text: string }) {
    this.server.to(body.room).emit("said", `${client.data.name}: ${body.text}`);
  }
}

@Controller()
class HealthController {
  @Get("health")
  health() {
    return "ok";
  }
}

@Module({ controllers: [HealthController], providers: [ChatGateway] })
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ["error", "warn"] });
app.useWebSocketAdapter(new PolysioAdapter(app));
await app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1");
console.log(`listening ${app.getHttpServer().address().port}`);
process.on("SIGTERM", () => app.close());
